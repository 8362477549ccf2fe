"""EvalResult serialisation, tables and run-folder files."""

import json
import math

import pytest

from hybridrec.eval import EvalResult, format_table, save_results


@pytest.fixture
def result():
    return EvalResult(
        metrics={
            "all": {"recall@10": 0.1, "recall@20": 0.15, "mrr": 0.3},
            "cold": {"recall@10": 0.02, "recall@20": float("nan"), "mrr": 0.05},
        },
        n_users={"all": 100, "cold": 7},
        n_items={"all": 50, "cold": 20},
        ks=(10, 20),
        target="test",
        info={"seconds": 0.5},
    )


def test_json_round_trip(result, tmp_path):
    path = result.to_json(tmp_path / "sub" / "m.json")
    back = EvalResult.from_json(path)
    assert back.n_users == result.n_users and back.ks == (10, 20) and back.info == result.info
    assert back.metrics["all"] == result.metrics["all"]
    assert math.isnan(back.metrics["cold"]["recall@20"])
    assert json.loads(path.read_text())["metrics"]["all"]["mrr"] == 0.3
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]  # no temporary left behind


def test_frames(result):
    wide = result.to_frame()
    assert list(wide.index) == ["all", "cold"] and wide.loc["all", "recall@20"] == 0.15
    assert wide.loc["cold", "n_users"] == 7
    long = result.to_frame("long")
    assert list(long.columns) == ["group", "metric", "k", "value", "n_users"]
    assert len(long) == 6
    row = long[(long.group == "all") & (long.metric == "recall") & (long.k == 20)]
    assert row.value.item() == 0.15
    assert long[long.metric == "mrr"].k.isna().all()
    with pytest.raises(ValueError, match="layout"):
        result.to_frame("tall")


def test_table_and_str(result):
    text = result.table()
    lines = text.splitlines()
    assert lines[0].split() == ["group", "users", "recall@10", "recall@20", "mrr"]
    assert lines[1].split() == ["all", "100", "0.1000", "0.1500", "0.3000"]
    assert lines[2].split() == ["cold", "7", "0.0200", "-", "0.0500"]  # nan shown as "-"
    assert len({len(line) for line in lines}) == 1  # fixed width
    assert text in str(result)
    assert format_table({"a": {"x": 1.0}}, digits=2) == "group     x\na      1.00"


def test_access(result):
    assert result.get("mrr") == 0.3 and result["cold"]["mrr"] == 0.05
    with pytest.raises(KeyError, match="groups"):
        result["warm"]
    with pytest.raises(KeyError, match="metrics"):
        result.get("ndcg@10")


def test_save_results(result, tmp_path):
    paths = save_results(result, tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.csv", "metrics.json"]
    assert EvalResult.from_json(paths["json"]).metrics["all"] == result.metrics["all"]
    header = paths["csv"].read_text().splitlines()[0]
    assert header == "group,metric,k,value,n_users"
