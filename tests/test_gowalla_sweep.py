"""The Gowalla recipe sweep's summary: known curves in, the table's figures out."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="module")
def sweep():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gowalla_sweep.py"
    spec = importlib.util.spec_from_file_location("gowalla_sweep_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _curve(folder: Path, rows: list[tuple[int, float, float, float]]) -> None:
    folder.mkdir(parents=True)
    with open(folder / "curve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "train_seconds", "loss", "recall@20", "ndcg@20", "eval_seconds"])
        for epoch, seconds, recall, ndcg in rows:
            w.writerow([epoch, seconds, 0.5, recall, ndcg, 1.0])


def test_summary_reads_marks_best_and_first_epoch_at_the_published_figure(sweep, tmp_path):
    # MF's published Recall@20 is 0.1627: first reached at epoch 100, best at 150, then it falls
    _curve(tmp_path / "mf-recipe", [(50, 100.0, 0.1500, 0.12), (100, 200.0, 0.1630, 0.13),
                                    (150, 300.0, 0.1660, 0.14), (200, 400.0, 0.1640, 0.135)])
    # a LightGCN run that never reaches 0.1830; one variant with no curve at all (a failed run)
    _curve(tmp_path / "lgcn-recipe", [(50, 150.0, 0.1790, 0.15)])
    sweep.summarise(tmp_path, ["mf-recipe", "lgcn-recipe", "lgcn-h50"], SimpleNamespace(device="cpu"))
    res = json.loads((tmp_path / "results.json").read_text())["variants"]
    mf = res["mf-recipe"]
    assert mf["first_epoch_at_published"] == 100
    assert mf["best"]["epoch"] == 150 and mf["best"]["recall@20"] == pytest.approx(0.1660)
    assert mf["recall_at"] == {"50": 0.15, "100": 0.163, "150": 0.166, "200": 0.164}
    assert mf["train_seconds_per_epoch"] == pytest.approx(2.0)
    assert res["lgcn-recipe"]["first_epoch_at_published"] is None
    assert "error" in res["lgcn-h50"]
    table = (tmp_path / "table.md").read_text().splitlines()
    assert len(table) == 5 and table[2].startswith("| mf-recipe | 200 | 2.00 | 0.1500 | 0.1630 |")


def test_unknown_variant_is_refused_with_the_known_names(sweep, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["gowalla_sweep.py", "--only", "no-such-recipe"])
    with pytest.raises(SystemExit):
        sweep.main()
    assert "lgcn-recipe" in capsys.readouterr().err
