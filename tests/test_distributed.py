"""Data-parallel training: two CPU processes (accelerate launch, DDP with gloo) against one,
for PinSage and the BPR families (MF, LightGCN, NGCF, the hybrid)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from safetensors.torch import load_file

from hybridrec.data import generate_synthetic, make_split
from hybridrec.train.distributed import DistContext, check_distributed
from hybridrec.data.sequences import recent_items
from hybridrec.run import main


def test_shares_cover_a_batch_in_contiguous_disjoint_parts():
    for n in (0, 1, 5, 8, 1023):
        for world in (1, 2, 3):
            shares = [DistContext(r, world, None).share(n) for r in range(world)]
            rows = np.concatenate([np.arange(n)[s] for s in shares])
            assert (rows == np.arange(n)).all()
            sizes = [s.stop - s.start for s in shares]
            assert max(sizes) - min(sizes) <= 1


def test_distributed_run_refuses_models_that_cannot_share_batches(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "1")
    check_distributed(["mf"])  # one process: anything goes
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_distributed(["pinsage", "mf", "lightgcn", "ngcf", "hybrid"])
    with pytest.raises(ValueError, match="gfcf.*without accelerate launch"):
        check_distributed(["pinsage", "gfcf"])
    assert main(["--model", "gfcf", "--dataset", "synthetic", "--quiet"]) == 2
    assert "trains only" in capsys.readouterr().err


N_USERS, N_ITEMS = 400, 300


def _batch_size_leaving_one() -> int:
    """A batch size whose last batch has a single pair, so one of two processes gets none."""
    split = make_split(generate_synthetic(N_USERS, N_ITEMS, seed=0), "leave_last_out", seed=0)
    ptr, _ = recent_items(split.train, 50)
    n_pairs = int(((ptr[1:] - ptr[:-1]).numpy()[split.train.users] >= 2).sum())
    return next(b for b in range(300, n_pairs) if n_pairs % b == 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp, launcher: list[str], batch_size: int) -> dict:
    cmd = [*launcher, "-m", "hybridrec.run", "--model", "pinsage", "--dataset", "synthetic",
           "--set", f"data.options={{n_users: {N_USERS}, n_items: {N_ITEMS}}}", "--set", "train.epochs=2",
           "--set", "data.split_options={n_test: 1, n_valid: 1}",
           "--set", f"train.batch_size={batch_size}", "--set", "train.lr=0.005",
           "--set", "model.params={dim: 16, n_walks: 20}", "--quiet", "--out-dir", str(tmp)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (run_dir,) = tmp.iterdir()
    return {"dir": run_dir, "out": res.stdout,
            "metrics": json.loads((run_dir / "metrics.json").read_text())["pinsage"]["metrics"]["all"],
            "history": json.loads((run_dir / "history.json").read_text())["pinsage"]["epochs"]}


@pytest.mark.slow
def test_two_processes_train_disjoint_shares_and_match_one_process(tmp_path):
    bs = _batch_size_leaving_one()
    one = _run(tmp_path / "one", [sys.executable], bs)
    two = _run(tmp_path / "two", [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                                  "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                                  "--dynamo_backend", "no", "--main_process_port", str(_free_port())], bs)
    assert two["out"].count("run folder:") == 1  # the main process alone reports

    n_pairs = one["history"][0]["pairs"]
    shares = [load_file(str(two["dir"] / "ddp" / f"pinsage.rank{r}.safetensors"))["epoch1_pairs"] for r in (0, 1)]
    infos = [json.loads((two["dir"] / "ddp" / f"pinsage.rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["world_size"] for i in infos] == [2, 2]
    a, b = (set(s.tolist()) for s in shares)
    assert len(a) == len(shares[0]) and len(b) == len(shares[1])  # no pair twice within a process
    assert not a & b  # disjoint shares
    assert a | b == set(range(n_pairs))  # that together cover the epoch
    assert abs(len(a) - len(b)) <= n_pairs // bs + 1  # about half each
    assert sum(i["pairs_per_epoch"][0] for i in infos) == n_pairs

    # same sampling, gradients averaged by DDP: the same training up to float summation order
    for e1, e2 in zip(one["history"], two["history"], strict=True):
        assert e2["loss"] == pytest.approx(e1["loss"], rel=2e-3)
        assert e2["recall@20"] == pytest.approx(e1["recall@20"], abs=0.01)
    for key in ("recall@20", "ndcg@20"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], abs=0.01)
    assert one["metrics"]["recall@20"] > 0.05  # it learned something (random is about 0.07 / 3)


def _run_bpr(tmp, launcher: list[str], model: str) -> dict:
    cmd = [*launcher, "-m", "hybridrec.run", "--mode", "collab", "--model", model, "--dataset", "synthetic",
           "--set", f"data.options={{n_users: {N_USERS}, n_items: {N_ITEMS}}}", "--set", "train.epochs=3",
           "--set", "data.split_options={n_test: 1, n_valid: 1}", "--set", "train.batch_size=1001",
           "--set", "train.lr=0.01", "--set", "model.params={dim: 16}", "--quiet", "--out-dir", str(tmp)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (run_dir,) = tmp.iterdir()
    doc = json.loads((run_dir / "metrics.json").read_text())[model]
    return {"out": res.stdout, "metrics": doc["metrics"]["all"], "users": doc["n_users"]["all"],
            "history": json.loads((run_dir / "history.json").read_text())[model]["epochs"]}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mf", "lightgcn", "ngcf", "hybrid"])
def test_bpr_models_train_and_evaluate_data_parallel_like_one_process(tmp_path, model):
    """Every process draws the same batches and negatives and takes the loss over its share
    of each batch (the last batch of 1001 rows splits 501 / 500); DDP averages the gradients,
    so training follows the one-process run up to float summation order. Evaluation is
    sharded by user and summed on every process; the main process alone writes."""
    one = _run_bpr(tmp_path / "one", [sys.executable], model)
    two = _run_bpr(tmp_path / "two", [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                                      "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                                      "--dynamo_backend", "no", "--main_process_port", str(_free_port())], model)
    assert two["out"].count("run folder:") == 1
    assert two["users"] == one["users"]
    for e1, e2 in zip(one["history"], two["history"], strict=True):
        assert e2["loss"] == pytest.approx(e1["loss"], rel=1e-4)
    for key in ("recall@20", "ndcg@20", "mrr"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], abs=0.005)
