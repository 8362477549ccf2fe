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


@pytest.mark.slow
def test_hybrid_mode_scores_new_items(tmp_path, capsys):
    """The default job's mode on a small catalogue, with the offline text model: the hybrid
    next to its parts (its graph part is the LightGCN of the table), then ``--mode update``
    folds new interactions, of a known and of a brand-new item, into the saved hybrid."""
    new = tmp_path / "new.csv"
    new.write_text("item_id,title,description\nbrand-new,Harbour Lights,A story of lighthouses and boats.\n")
    code = main(["--mode", "hybrid", *SMALL, "--out-dir", str(tmp_path / "runs"),
                 "--new-items", str(new), "--top-k", "4"])
    assert code == 0
    out = capsys.readouterr().out
    assert all(m in out for m in ("content", "lightgcn", "hybrid")) and "cold" in out and "warm" in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["content", "lightgcn", "hybrid"]
    assert metrics["hybrid"]["graph_part"] == "lightgcn (reused)"
    warm = {m: metrics[m]["metrics"]["warm"]["recall@20"] for m in metrics}
    assert warm["hybrid"] >= 0.9 * warm["lightgcn"]
    ranked = (run_dir / "new_items_top_users.csv").read_text().splitlines()
    assert ranked[0] == "model,item_id,rank,user_id,score"
    assert len(ranked) == 1 + 2 * 4 and all(",brand-new," in line for line in ranked[1:])
    assert {line.split(",")[0] for line in ranked[1:]} == {"content", "hybrid"}

    saved = run_dir / "models" / "hybrid"
    config = json.loads((saved / "config.json").read_text())
    user, item = config["user_ids"][0], config["item_ids"][0]
    inter = tmp_path / "inter.csv"
    inter.write_text(f"user_id,item_id\n{user},brand-new\nsomeone-new,brand-new\n{user},{item}\n")
    assert main(["--mode", "update", "--load", str(saved), "--interactions", str(inter), "--quiet",
                 "--out-dir", str(tmp_path / "up")]) == 1  # brand-new needs its text
    assert "--new-items on the command line" in capsys.readouterr().err
    assert main(["--mode", "update", "--load", str(saved), "--interactions", str(inter), "--new-items", str(new),
                 "--quiet", "--out-dir", str(tmp_path / "up2")]) == 0
    assert "1 new users, 1 new items, 2 items touched" in capsys.readouterr().out
    (up,) = (tmp_path / "up2").iterdir()
    rows = (up / "items_updated.csv").read_text().splitlines()
    assert rows[0] == "item_id,interactions_before,interactions_after,blend_before,blend_after"
    assert rows[1].startswith("brand-new,0,2,")
    from hybridrec.models import load_model

    updated = load_model(up / "models" / "hybrid")
    assert "someone-new" in updated.user_vocab and "brand-new" in updated.item_vocab


def test_hybrid_mode_with_pinsage_trains_pinsage_on_the_cold_item_split(tmp_path, capsys):
    new = tmp_path / "new.csv"
    new.write_text("item_id,title\nbrand-new,Harbour Lights\n")
    code = main(["--mode", "hybrid", "--model", "pinsage", *SMALL, "--out-dir", str(tmp_path / "runs"),
                 "--new-items", str(new), "--top-k", "3"])
    assert code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["pinsage"] and metrics["pinsage"]["metrics"]["cold"]["recall@20"] > 0
    assert json.loads((run_dir / "split.json").read_text())["kind"] == "cold_item"
    assert len((run_dir / "new_items_top_users.csv").read_text().splitlines()) == 1 + 3


@pytest.mark.parametrize("args, message", [
    (["--mode", "update"], "needs --load"),
    (["--mode", "collab", "--load", "x"], "belong to --mode update"),
    (["--mode", "hybrid", "--model", "mf"], "--mode collab --model mf"),
])
def test_update_and_hybrid_flags_are_checked(tmp_path, capsys, args, message):
    assert main([*args, "--out-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_new_items_need_a_content_model(tmp_path, capsys):
    assert main(["--mode", "collab", "--new-items", "x.csv", "--out-dir", str(tmp_path)]) == 2
    assert "--mode hybrid" in capsys.readouterr().err
