"""The command line end to end on a small synthetic catalogue."""

import json

import pytest

from hybridrec.run import main

SMALL = ["--dataset", "synthetic", "--set", "data.options={n_users: 300, n_items: 200}",
         "--set", "train.epochs=3", "--quiet"]


def test_collab_run_writes_run_folder(tmp_path, capsys):
    code = main(["--mode", "collab", "--model", "popularity,mf", *SMALL, "--out-dir", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "recall@20" in out and "popularity" in out and "mf" in out
    (run_dir,) = tmp_path.iterdir()
    for name in ("config.yaml", "metrics.json", "metrics.csv", "run.log", "history.json", "split.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "models" / "mf" / "weights.safetensors").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 < metrics["mf"]["metrics"]["all"]["recall@20"] <= 1
    assert len(json.loads((run_dir / "history.json").read_text())["mf"]["epochs"]) == 3


def test_same_seed_same_metrics(tmp_path):
    runs = []
    for i in range(2):
        assert main(["--model", "mf", *SMALL, "--seed", "5", "--out-dir", str(tmp_path / str(i))]) == 0
        (run_dir,) = (tmp_path / str(i)).iterdir()
        runs.append(json.loads((run_dir / "metrics.json").read_text())["mf"]["metrics"])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("args, message", [
    (["--set", "train.epoch=3"], "unknown key"),
    (["--model", "nope"], "valid models"),
    (["--set", "model.params={dimension: 3}"], "none of the models"),
    (["--dataset", "nope"], "nope"),
])
def test_bad_settings_are_clear_errors(tmp_path, capsys, args, message):
    code = main(["--out-dir", str(tmp_path), "--quiet", *args])
    assert code != 0
    assert message in capsys.readouterr().err
