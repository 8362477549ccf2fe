"""``hybridrec recommend``: lists from a saved run folder for known users, new users (by
liked items or by a text profile), similar items and brand-new items, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import json

import pytest

from hybridrec.cli import main as cli
from hybridrec.run import main as run

SMALL = ["--dataset", "synthetic", "--set", "data.options={n_users: 200, n_items: 150}", "--quiet",
         "--set", "train.epochs=3"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert run(["--mode", "hybrid", *SMALL, "--out-dir", str(out), "--set", "run.name=r"]) == 0
    return out / "r"


def _users(run_dir, n=3):
    from hybridrec.models import load_model

    assert (run_dir / "items.csv").is_file()
    return load_model(run_dir / "models" / "hybrid").user_vocab.ids[:n].tolist()


def test_known_users_get_a_table_with_titles(run_dir, capsys):
    users = _users(run_dir)
    assert cli(["recommend", "--run", str(run_dir), "--users", ",".join(users), "--k", "5"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:4] == ["user_id", "rank", "item_id", "title"]
    assert len(out.strip().splitlines()) == 1 + 3 * 5 and all(u in out for u in users)


def test_csv_and_json_outputs_and_model_choice(run_dir, tmp_path, capsys):
    users = _users(run_dir, 2)
    assert cli(["recommend", "--run", str(run_dir), "--model", "content", "--users", ",".join(users),
                "--k", "4", "--output", str(tmp_path / "r.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 8 and [r["rank"] for r in rows[:4]] == ["1", "2", "3", "4"] and rows[0]["title"]
    assert cli(["recommend", "--run", str(run_dir), "--similar", rows[0]["item_id"], "--k", "3",
                "--output", str(tmp_path / "s.json")]) == 0
    sim = json.loads((tmp_path / "s.json").read_text())
    assert len(sim) == 3 and all(r["item_id"] != rows[0]["item_id"] for r in sim)


def test_new_users_by_liked_items_and_by_profile(run_dir, capsys):
    titles = {r["item_id"]: r["title"] for r in csv.DictReader((run_dir / "items.csv").open())}
    liked = list(titles)[:3]
    assert cli(["recommend", "--run", str(run_dir), "--liked", ",".join(liked), "--k", "5"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 6 and not any(f" {i} " in out for i in liked)
    some_title = titles[liked[0]]
    assert cli(["recommend", "--run", str(run_dir), "--profile", some_title, "--k", "5"]) == 0
    assert liked[0] in capsys.readouterr().out.splitlines()[1]  # its own title finds the item first


@pytest.mark.parametrize("args, message", [
    (["--users", "nobody"], "unknown user id 'nobody'"),
    (["--liked", "no-such-item"], "no-such-item"),
    (["--users", "x", "--model", "ngcf"], "saved no model 'ngcf'"),
])
def test_bad_requests_are_one_line_errors(run_dir, capsys, args, message):
    assert cli(["recommend", "--run", str(run_dir), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err


def test_a_folder_without_models_is_a_clear_error(tmp_path, capsys):
    assert cli(["recommend", "--run", str(tmp_path), "--users", "1"]) == 1
    assert "has no saved models" in capsys.readouterr().err
