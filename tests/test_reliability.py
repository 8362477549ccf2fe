"""Reliability: no run reports garbage as a result, bad settings and paths fail early and
clearly, and interrupted writes leave nothing that a later write or read trips over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from hybridrec.config import Config, TrainConfig
from hybridrec.data import generate_synthetic, make_split
from hybridrec.eval import evaluate
from hybridrec.io import atomic_folder, clean_stale, csv_cell, write_csv, write_json
from hybridrec.models import MF, LightGCN, load_model
from hybridrec.run import main, make_run_dir
from hybridrec.train import TrainingDiverged

SMALL = ["--dataset", "synthetic", "--set", "data.options={n_users: 200, n_items: 150}", "--quiet"]


@pytest.fixture(scope="module")
def split():
    return make_split(generate_synthetic(n_users=200, n_items=150, seed=0), "leave_last_out", n_valid=1, seed=0)


# -- 1. diverged training never reports metrics ------------------------------------------
@pytest.mark.parametrize("model, train, message", [
    (MF, {"lr": 1e30}, "the loss is nan"),
    (LightGCN, {"lr": 1000.0, "l2": 1000.0}, "exploded"),
])
def test_diverging_training_stops_with_the_likely_cause(split, model, train, message):
    m = model(dim=16, train=TrainConfig(epochs=3, progress=False, **train))
    with pytest.raises(TrainingDiverged, match=message) as e:
        m.fit(split.train, split.valid)
    assert "lower" in str(e.value) and "train.lr" in str(e.value)


def test_diverged_run_exits_non_zero_without_metrics(tmp_path, capsys):
    code = main(["--model", "mf,lightgcn", *SMALL, "--set", "train.lr=1.0e+30", "--out-dir", str(tmp_path)])
    assert code != 0
    assert "training diverged" in capsys.readouterr().err
    assert not list(tmp_path.rglob("metrics.json"))


def test_evaluator_refuses_nan_scores(split):
    def nan_scores(users):
        s = torch.rand(len(users), split.n_items)
        s[0, 3] = float("nan")
        return s

    with pytest.raises(ValueError, match="NaN scores"):
        evaluate(nan_scores, split)


def test_json_is_always_valid_and_csv_cells_are_inert(tmp_path):
    p = write_json(tmp_path / "m.json", {"recall": float("nan"), "t": [float("inf"), -float("inf"), 0.5]})
    text = p.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"recall": None, "t": ["inf", "-inf", 0.5]}
    assert [csv_cell(v) for v in ["=cmd|' /C calc'!A1", "+1+1", "@SUM(A1)", "-x", "-1.5", "u42", 3]] == \
        ["'=cmd|' /C calc'!A1", "'+1+1", "'@SUM(A1)", "'-x", "-1.5", "u42", 3]
    write_csv(tmp_path / "r.csv", [{"user_id": "=HYPERLINK(\"x\")", "score": -1.0}])
    assert (tmp_path / "r.csv").read_text().splitlines()[1].startswith('"\'=HYPERLINK')


# -- 7. interrupted writes ---------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_leftovers_of_a_killed_writer_are_removed_and_a_lost_save_is_put_back(tmp_path):
    host, dead = socket.gethostname().replace("-", "_"), _dead_pid()
    atomic_folder(tmp_path / "model", lambda d: (d / "w").write_text("v1"))
    # killed between moving the old copy aside and renaming the new one in: only leftovers
    os.replace(tmp_path / "model", tmp_path / f".model.old-{host}-{dead}-abc")
    (tmp_path / f".model.tmp-{host}-{dead}-def").mkdir()
    (tmp_path / f".cache.json.tmp-{host}-{dead}-x.tmp").write_text("half")
    (tmp_path / f".model.tmp-{host}-{os.getpid()}-live").mkdir()  # a live writer's: kept
    clean_stale(tmp_path / "model")
    assert (tmp_path / "model" / "w").read_text() == "v1"
    assert not (tmp_path / f".model.tmp-{host}-{dead}-def").exists()
    assert (tmp_path / f".model.tmp-{host}-{os.getpid()}-live").exists()
    write_json(tmp_path / "cache.json", {})
    assert not (tmp_path / f".cache.json.tmp-{host}-{dead}-x.tmp").exists()
    atomic_folder(tmp_path / "model", lambda d: (d / "w").write_text("v2"))  # later saves work
    assert (tmp_path / "model" / "w").read_text() == "v2"


def test_load_model_recovers_a_save_killed_mid_swap(tmp_path, split):
    m = MF(dim=8, train=TrainConfig(epochs=1, progress=False)).fit(split.train)
    m.save(tmp_path / "mf")
    host, dead = socket.gethostname().replace("-", "_"), _dead_pid()
    os.replace(tmp_path / "mf", tmp_path / f".mf.old-{host}-{dead}-zz")
    loaded = load_model(tmp_path / "mf")
    users = list(split.train.user_vocab.ids[:3])
    np.testing.assert_allclose(loaded.score(users), m.score(users))


# -- 9. run folders ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "..", "~x"])
def test_run_names_stay_inside_out_dir(tmp_path, capsys, name):
    assert main(["--model", "popularity", *SMALL, "--out-dir", str(tmp_path / "runs"), "--set",
                 f"run.name={name}"]) == 2
    assert "plain folder name" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_concurrent_runs_with_one_name_get_their_own_folders(tmp_path):
    cfg = Config()
    cfg.run.out_dir, cfg.run.name = str(tmp_path), "same"
    with ThreadPoolExecutor(8) as ex:
        dirs = list(ex.map(lambda _: make_run_dir(cfg), range(30)))
    assert len({str(d) for d in dirs}) == 30 and all(d.is_dir() for d in dirs)


@pytest.mark.parametrize("make, message", [
    (lambda p: (p / "file").write_text(""), "exists and is not a folder"),
])
def test_bad_out_dir_is_a_one_line_error(tmp_path, capsys, make, message):
    make(tmp_path)
    assert main(["--model", "popularity", *SMALL, "--out-dir", str(tmp_path / "file")]) == 2
    assert message in capsys.readouterr().err
    assert main(["--model", "popularity", *SMALL, "--out-dir", str(tmp_path / "file" / "sub")]) == 2
    assert "Not a directory" in capsys.readouterr().err


# -- 3, 5, 6. inputs and settings that cannot give a meaningful result ------------------
def _csv(tmp_path, rows: str):
    p = tmp_path / "i.csv"
    p.write_text("user_id,item_id,timestamp\n" + rows)
    return p


def test_huge_timestamps_are_bad_rows_not_wrapped(tmp_path):
    from hybridrec.data import DataError, load_dataset

    p = _csv(tmp_path, "1,1,100\n1,2,1e30\n2,1,50\n")
    with pytest.raises(DataError, match=r"line 3: timestamp '1e30' .* out of range"):
        load_dataset("csv", p, time_col="timestamp")
    assert load_dataset("csv", p, time_col="timestamp", on_bad_rows="skip").timestamps.tolist() == [100, 50]


@pytest.mark.parametrize("rows, split, message", [
    ("", "leave_last_out", "has no interactions"),
    ("1,1,5\n1,2,5\n2,1,5\n2,3,5\n3,2,5\n", "temporal", "all timestamps are equal"),
    ("1,1,5\n2,2,6\n3,3,7\n", "leave_last_out", "no test rows are left"),
])
def test_degenerate_splits_are_clear_errors(tmp_path, capsys, rows, split, message):
    p = _csv(tmp_path, rows)
    code = main(["--dataset", "csv", "--data-path", str(p), "--set", "data.options.time_col=timestamp",
                 "--set", f"data.split={split}", "--quiet", "--out-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 1 and "degenerate" in err and message in err
    assert not list((tmp_path / "runs").rglob("metrics.json"))


@pytest.mark.parametrize("setting, message", [
    ("train.epochs=0", "train.epochs must be an integer >= 1"),
    ("train.batch_size=0", "train.batch_size must be an integer >= 1"),
    ("train.l2=.nan", "train.l2 must be a finite number >= 0"),
    ("train.lr=0", "train.lr must be a finite number > 0"),
    ("train.lr=.inf", "train.lr must be a finite number > 0"),
    ("train.patience=-1", "train.patience must be an integer >= 1"),
    ("train.eval_every=-1", "train.eval_every must be an integer >= 0"),
    ("eval.ks=[0, 10]", "eval.ks must be a list of positive integers"),
    ("data.split_options.cold_fraction=0.3", "cold_fraction applies to cold_item splits only"),
    ("data.split_options.colds=0.3", "unknown; split options"),
])
def test_out_of_range_settings_fail_before_the_run_folder(tmp_path, capsys, setting, message):
    assert main(["--model", "mf", *SMALL, "--set", setting, "--out-dir", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_load_model_checks_weights_against_config(tmp_path, split):
    from safetensors.torch import load_file, save_file

    MF(dim=8, train=TrainConfig(epochs=1, progress=False)).fit(split.train).save(tmp_path / "mf")
    weights = load_file(str(tmp_path / "mf" / "weights.safetensors"))
    save_file({**weights, "item_emb": weights["item_emb"][:-3]}, str(tmp_path / "mf" / "weights.safetensors"))
    with pytest.raises(ValueError, match="147 items, config.json lists 200 users and 150 items"):
        load_model(tmp_path / "mf")
    save_file({k: v for k, v in weights.items() if k != "item_emb"}, str(tmp_path / "mf" / "weights.safetensors"))
    with pytest.raises(ValueError, match="KeyError: 'item_emb'.*save the model again"):
        load_model(tmp_path / "mf")


# -- 2. the same seed gives the same metrics, every model family -------------------------
@pytest.mark.slow
@pytest.mark.parametrize("mode, model", [("collab", "mf"), ("collab", "lightgcn"), ("collab", "ngcf"),
                                         ("collab", "pinsage"), ("hybrid", None)])
def test_two_seeded_runs_give_identical_metrics(tmp_path, mode, model):
    """Two processes with two threads each (where CPU kernels may add in any order): the
    command line's deterministic kernels make the metrics equal to the last digit."""
    args = ["--mode", mode, *(["--model", model] if model else []), *SMALL, "--set", "train.epochs=3",
            "--set", "model.params={dim: 16}" if model else "train.patience=2", "--seed", "3"]
    metrics = []
    for i in range(2):
        out = subprocess.run([sys.executable, "-m", "hybridrec.run", *args, "--out-dir", str(tmp_path / str(i)),
                              "--set", "run.name=r"], capture_output=True, text=True, timeout=600,
                             env={**os.environ, "OMP_NUM_THREADS": "2"})
        assert out.returncode == 0, out.stderr[-2000:]
        doc = json.loads((tmp_path / str(i) / "r" / "metrics.json").read_text())
        metrics.append({m: r["metrics"] for m, r in doc.items()})
    assert metrics[0] == metrics[1]


def test_load_model_refuses_user_tables_that_disagree_with_the_vocabulary(tmp_path, split):
    from safetensors.torch import load_file, save_file

    MF(dim=8, train=TrainConfig(epochs=1, progress=False)).fit(split.train).save(tmp_path / "mf")
    weights = load_file(str(tmp_path / "mf" / "weights.safetensors"))
    save_file({**weights, "user_emb": torch.cat([weights["user_emb"], weights["user_emb"][:5]])},
              str(tmp_path / "mf" / "weights.safetensors"))
    with pytest.raises(ValueError, match="205 users and 150 items, config.json lists 200 users"):
        load_model(tmp_path / "mf")


# -- 4. --new-items problems are found before training ------------------------------------
@pytest.mark.parametrize("rows, message", [
    ("x1,Harbour\nx1,Again\n", "duplicate item id(s) 'x1'"),
    ("x1,\n", "have no text"),
    ("i001,Known title\n", "already in the model's catalogue"),
])
def test_new_items_problems_stop_the_run_before_training(tmp_path, capsys, rows, message):
    f = tmp_path / "new.csv"
    f.write_text("item_id,title\n" + rows)
    code = main(["--mode", "hybrid", *SMALL, "--new-items", str(f), "--out-dir", str(tmp_path / "runs"),
                 "--set", "train.epochs=1"])
    assert code != 0 and message in capsys.readouterr().err
    assert not list((tmp_path / "runs").rglob("weights.safetensors"))  # nothing was trained


def test_model_settings_out_of_range_fail_before_the_run_folder(tmp_path, capsys):
    assert main(["--model", "mf", *SMALL, "--set", "model.params.dim=0", "--out-dir", str(tmp_path / "r")]) == 2
    assert "dim must be an integer >= 1" in capsys.readouterr().err and not (tmp_path / "r").exists()
