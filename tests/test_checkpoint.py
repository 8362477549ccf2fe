"""Checkpoints and --resume: an interrupted run, resumed, gives the metrics of a run that was
never interrupted (exactly, on the CPU), and no half-written checkpoint is ever read.

Exact equality needs deterministic kernels: with several intra-op threads, two uninterrupted
CPU runs already differ in the last bits of the weights (parallel scatter-adds), so these
tests train with one thread (``torch.set_num_threads(1)``, ``OMP_NUM_THREADS=1``)."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hybridrec.config import Config, TrainConfig
from hybridrec.run import build_config, main, parse_args
from hybridrec.train import checkpoint as ckpt_mod
from hybridrec.train import fit_loop, minibatch_epoch
from hybridrec.train.checkpoint import CheckpointError, Checkpointer, TrainingInterrupted, attach, checkpointing

SMALL = ["--dataset", "synthetic", "--set", "data.options={n_users: 300, n_items: 200}",
         "--set", "data.split_options={n_valid: 1}", "--set", "train.epochs=4", "--set", "train.eval_every=1",
         "--seed", "3", "--quiet"]


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _results(run_dir: Path) -> dict:
    """metrics.json without its timings (the only values that differ between runs)."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if not k.endswith("seconds")}
        return obj

    return strip(json.loads((run_dir / "metrics.json").read_text()))


def _losses(run_dir: Path) -> dict:
    hist = json.loads((run_dir / "history.json").read_text())
    return {m: ([r["loss"] for r in h["epochs"]], [r.get("recall@20") for r in h["epochs"]], h["best_epoch"])
            for m, h in hist.items()}


# -- the checkpoint itself ---------------------------------------------------------------
class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Linear(4, 3)
        self.register_buffer("count", torch.zeros(2))

    def forward(self, x):
        return self.w(x)


def _trained_toy(seed=0):
    torch.manual_seed(seed)
    m = Toy()
    opt = torch.optim.Adam(m.parameters(), lr=0.1, betas=(0.8, 0.99))
    for _ in range(3):
        opt.zero_grad()
        m(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    m.count += 7
    return m, opt


def test_round_trip_restores_module_optimizer_generators_rngs_and_loop_exactly(tmp_path):
    m, opt = _trained_toy()
    gen = torch.Generator().manual_seed(5)
    torch.rand(4, generator=gen)
    torch.manual_seed(11), np.random.seed(12), random.seed(13)
    np.random.standard_normal()  # numpy keeps a cached gaussian: part of its state
    c = Checkpointer(tmp_path / "c", every=1)
    c.attach(optimizer=opt, generators={"sampling": gen})
    cfg = TrainConfig(epochs=5, progress=False)
    loop = {"epoch": 2, "finished": False, "history": {"epochs": [{"epoch": 1, "loss": 0.1 + 0.2}]},
            "bad_evals": 1, "first_loss": 1 / 3, "initial_loss": None, "seconds": 1.5}
    best = {k: v.clone() + 1 for k, v in m.state_dict().items()}
    c.write(c.capture(m, loop, best, cfg))
    expect = {"module": {k: v.clone() for k, v in m.state_dict().items()}, "opt": opt.state_dict(),
              "gen": torch.rand(3, generator=gen.clone_state()), "torch": torch.rand(3),
              "np": np.random.standard_normal(3),
              "py": [random.random() for _ in range(3)]}

    m2, opt2 = _trained_toy(seed=1)  # other weights, other optimiser state, RNGs elsewhere
    gen2 = torch.Generator().manual_seed(99)
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    c2 = Checkpointer(tmp_path / "c", every=1)
    c2.attach(optimizer=opt2, generators={"sampling": gen2})
    loop2, best2 = c2.restore(c2.load(), m2, TrainConfig(epochs=5, progress=True, checkpoint_every=3))
    assert loop2 == loop  # floats through JSON are exact
    assert all(torch.equal(best2[k], best[k]) for k in best)
    assert all(torch.equal(m2.state_dict()[k], v) for k, v in expect["module"].items())
    s1, s2 = expect["opt"], opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for p in s1["state"]:
        assert all(torch.equal(s1["state"][p][k], s2["state"][p][k]) for k in s1["state"][p])
    assert torch.equal(torch.rand(3, generator=gen2), expect["gen"])
    assert torch.equal(torch.rand(3), expect["torch"])
    assert np.array_equal(np.random.standard_normal(3), expect["np"])
    assert [random.random() for _ in range(3)] == expect["py"]


def test_a_leftover_temporary_folder_is_never_read(tmp_path):
    m, opt = _trained_toy()
    c = Checkpointer(tmp_path / "c")
    c.attach(optimizer=opt)
    cfg = TrainConfig(progress=False)
    host = socket.gethostname().replace("-", "_")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    half = tmp_path / f".c.tmp-{host}-{dead}-x"  # what a writer killed mid-write leaves
    half.mkdir()
    (half / ckpt_mod.TENSORS).write_bytes(b"partial")
    assert c.load() is None and not half.exists()  # no checkpoint yet; the dead writer's leftover is gone
    loop = {"epoch": 1, "finished": False, "history": {}, "bad_evals": 0, "first_loss": None,
            "initial_loss": None, "seconds": 0.0}
    c.write(c.capture(m, loop, None, cfg))
    live = tmp_path / f".c.tmp-{host}-{os.getpid()}-y"  # a live writer's work in progress: left alone, not read
    live.mkdir()
    (live / ckpt_mod.STATE).write_text("{}")
    assert c.load().meta["loop"]["epoch"] == 1 and live.exists()


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / ckpt_mod.TENSORS).write_bytes((f / ckpt_mod.TENSORS).read_bytes()[:-10]), "SHA-256"),
    (lambda f: (f / ckpt_mod.STATE).unlink(), "damaged"),
    (lambda f: (f / ckpt_mod.STATE).write_text('{"format": "x"'), "damaged"),
])
def test_a_damaged_checkpoint_is_a_clear_error(tmp_path, damage, message):
    m, opt = _trained_toy()
    c = Checkpointer(tmp_path / "c")
    c.attach(optimizer=opt)
    loop = {"epoch": 1, "finished": False, "history": {}, "bad_evals": 0, "first_loss": None,
            "initial_loss": None, "seconds": 0.0}
    c.write(c.capture(m, loop, None, TrainConfig(progress=False)))
    damage(tmp_path / "c")
    with pytest.raises(CheckpointError, match=message) as e:
        c.load()
    assert "delete the folder" in str(e.value)


def test_a_checkpoint_of_other_train_settings_is_refused(tmp_path):
    m, opt = _trained_toy()
    c = Checkpointer(tmp_path / "c")
    c.attach(optimizer=opt)
    loop = {"epoch": 1}
    c.write(c.capture(m, loop, None, TrainConfig(lr=0.01)))
    with pytest.raises(CheckpointError, match="other train settings \\(lr\\)"):
        c.restore(c.load(), m, TrainConfig(lr=0.02))


# -- fit_loop: early stopping state, signals ---------------------------------------------
def _toy_training(folder: Path | None, values: list[float], stop_at: int | None = None, done: int = 0):
    """A seeded linear model trained by minibatch_epoch for ``len(values)`` epochs, epoch
    ``e`` validated as ``values[e - 1]`` (patience 2), ``done`` epochs in the checkpoint;
    SIGINT after the first batch of the ``stop_at``-th epoch run."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randn(64, 3)
    module = Toy()
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(module.parameters(), lr=0.05)

    def step(rows):
        out = module(x[rows])
        return (out - y[rows] + 0.1 * torch.randn_like(out)).pow(2).mean()  # the global RNG too

    run_epoch = minibatch_epoch(step, opt, 64, 16, generator=gen)
    seen = iter(values[done:])
    cfg = TrainConfig(epochs=len(values), patience=2, progress=False)

    def train():
        attach(optimizer=opt, generators={"sampling": gen})
        return fit_loop(module, run_epoch, cfg, validate=lambda: next(seen))

    if folder is None:
        return train(), module
    epochs = {"n": 0}
    real = ckpt_mod.fault_point

    def fault(phase):
        if phase == "train":
            epochs["n"] += 1
            if epochs["n"] == stop_at:
                os.kill(os.getpid(), signal.SIGINT)

    ckpt_mod.fault_point = fault
    try:
        with checkpointing(folder, every=2):
            return train(), module
    finally:
        ckpt_mod.fault_point = real


def test_fit_loop_resumes_early_stopping_exactly(tmp_path, one_thread):
    values = [0.1, 0.3, 0.2, 0.25, 0.4, 0.5]  # best at 2, no better at 3 and 4: stops after epoch 4
    want, module = _toy_training(None, values)
    assert want.stopped_early and want.best_epoch == 2 and len(want.rows) == 4
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as e:
        _toy_training(tmp_path / "c", values, stop_at=4)  # during epoch 4: epoch 3 (one bad evaluation) is kept
    assert e.value.epoch == 4 and e.value.exit_code == 130 and signal.getsignal(signal.SIGINT) is handler
    assert json.loads((tmp_path / "c" / "state.json").read_text())["loop"]["bad_evals"] == 1
    got, module2 = _toy_training(tmp_path / "c", values, done=3)
    assert [r["loss"] for r in got.rows] == [r["loss"] for r in want.rows]
    assert (got.best_epoch, got.best_value, got.stopped_early) == (want.best_epoch, want.best_value, True)
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), module2.state_dict().values()))
    state = json.loads((tmp_path / "c" / "state.json").read_text())
    assert state["loop"]["finished"] and state["optimizers"] == []
    again, module3 = _toy_training(tmp_path / "c", values, done=6)  # finished: no epoch runs, the kept weights load
    assert again.rows == got.rows
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), module3.state_dict().values()))


def test_without_a_checkpoint_block_or_attachment_nothing_is_written(tmp_path, one_thread):
    with checkpointing(tmp_path / "c"):  # a trainer that attaches nothing trains as without the block
        torch.manual_seed(0)
        m = Toy()
        hist = fit_loop(m, lambda epoch: {"loss": 1.0}, TrainConfig(epochs=2, progress=False))
    assert len(hist.rows) == 2 and not (tmp_path / "c").exists()
    assert not ckpt_mod.stop_requested() and ckpt_mod.active() is None


# -- the command line --------------------------------------------------------------------
def test_cli_checkpoints_by_default_in_the_resumable_modes():
    assert build_config(parse_args(["--mode", "collab"])).train.checkpoint_every == 1
    assert build_config(parse_args(["--mode", "hybrid"])).train.checkpoint_every == 1
    assert build_config(parse_args(["--mode", "compare"])).train.checkpoint_every == 0
    assert build_config(parse_args(["--set", "train.checkpoint_every=0"])).train.checkpoint_every == 0
    assert Config().train.checkpoint_every == 0


def test_resume_gives_the_metrics_of_an_uninterrupted_run(tmp_path, capsys, one_thread, monkeypatch):
    """MF interrupted during epoch 2, resumed; LightGCN then interrupted during its epoch 3
    (MF, finished, does not train again), resumed to the end: metrics.json and the history
    equal those of a run never interrupted, to the last bit."""
    args = ["--model", "mf,lightgcn", *SMALL]
    assert main([*args, "--out-dir", str(tmp_path / "a")]) == 0
    (want,) = (tmp_path / "a").iterdir()
    train_calls = {"n": 0}

    def fault(phase):
        if phase == "train":
            train_calls["n"] += 1
            if train_calls["n"] in stops:
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ckpt_mod, "fault_point", fault)
    stops = {2}
    capsys.readouterr()
    assert main([*args, "--out-dir", str(tmp_path / "b")]) == 130
    (run,) = (tmp_path / "b").iterdir()
    assert capsys.readouterr().err.strip() == (f"interrupted at epoch 2; checkpoint written to {run}/checkpoints/mf; "
                                               f"resume with --resume {run}")
    assert not (run / "metrics.json").exists()
    train_calls["n"], stops = 0, {3 + 3}  # MF's epochs 2-4, then LightGCN's 1-3: stop in its 3rd
    assert main(["--resume", str(run), "--quiet"]) == 130
    assert f"checkpoints/lightgcn; resume with --resume {run}" in capsys.readouterr().err
    stops = set()
    assert main(["--resume", str(run)]) == 0
    assert _results(run) == _results(want)
    assert _losses(run) == _losses(want)
    log = (run / "run.log").read_text()
    assert log.count("resuming run folder") == 2 and "resuming after epoch 1" in log and "resuming after epoch 2" in log
    assert "MFModule: finished before" in log  # the last resume trained neither model again


def test_ctrl_c_outside_training_exits_130_with_the_resume_hint(tmp_path, capsys, monkeypatch):
    import hybridrec.experiments.single as single

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(single, "evaluate", interrupted)
    assert main(["--model", "mf", *SMALL, "--set", "train.epochs=1", "--out-dir", str(tmp_path)]) == 130
    (run,) = tmp_path.iterdir()
    assert capsys.readouterr().err.strip() == f"interrupted; resume with --resume {run}"
    assert json.loads((run / "checkpoints" / "mf" / "state.json").read_text())["loop"]["finished"]


def test_resume_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(["--resume", str(tmp_path), "--seed", "1"])
    assert e.value.code == 2 and "--seed cannot be given with it" in capsys.readouterr().err
    assert main(["--resume", str(tmp_path)]) == 2
    assert "no config.yaml there" in capsys.readouterr().err
    for changes, message in (({"train": {"checkpoint_every": 0}}, "checkpoint_every=0"),
                             ({"run": {"mode": "compare"}}, "cannot be resumed")):
        cfg = Config.from_dict(changes)
        (tmp_path / "config.yaml").write_text(json.dumps(cfg.to_dict()))
        assert main(["--resume", str(tmp_path), "--quiet"]) == 2
        assert message in capsys.readouterr().err


def _start(args: list[str], pause: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYBRIDREC_TEST_PAUSE": pause or ""}
    return subprocess.Popen([sys.executable, "-m", "hybridrec.run", *args], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_pause(proc: subprocess.Popen) -> tuple[bool, str]:
    """Read stderr until the pause line (True) or the end of the process (False)."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("hybridrec-test-pause "):
            return True, "".join(seen)
    proc.wait(timeout=120)
    return False, "".join(seen)


def test_sigterm_writes_the_checkpoint_and_exits_143(tmp_path):
    proc = _start(["--model", "mf", *SMALL, "--out-dir", str(tmp_path)], pause="train:3")
    paused, _ = _wait_for_pause(proc)
    assert paused
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 143
    (run,) = tmp_path.iterdir()
    assert err.strip() == (f"interrupted at epoch 3; checkpoint written to {run}/checkpoints/mf; "
                           f"resume with --resume {run}")
    state = json.loads((run / "checkpoints" / "mf" / "state.json").read_text())
    assert state["loop"]["epoch"] == 2 and not state["loop"]["finished"]


# -- fault injection ---------------------------------------------------------------------
EPOCHS = 4  # SMALL's train.epochs


def _reachable(run: Path | None, model: str, phase: str) -> int:
    """How many times a (resumed) run of ``run`` reaches ``phase`` (0: never), from its checkpoint:
    one ``train`` pause per epoch left, one ``checkpoint`` write per epoch left plus the final
    one, one evaluation and one set of result files per run."""
    if phase in ("evaluate", "write"):
        return 1
    state = run / "checkpoints" / model / "state.json" if run else None
    loop = json.loads(state.read_text())["loop"] if state and state.is_file() else {"epoch": 0, "finished": False}
    if loop["finished"]:
        return 0
    return EPOCHS - loop["epoch"] + (phase == "checkpoint")


def _checkpoints_complete(run: Path) -> bool:
    """Every checkpoint folder in sight is whole (its state.json names its tensors' SHA-256)."""
    import hashlib

    for folder in (run / "checkpoints").glob("[!.]*"):
        meta = json.loads((folder / "state.json").read_text())
        if hashlib.sha256((folder / "tensors.safetensors").read_bytes()).hexdigest() != meta["tensors"]["sha256"]:
            return False
    return True


def _attempt(args: list[str], pause: str | None) -> bool:
    """Run the command line; SIGKILL it at the pause if it gets there (True), else it must
    complete (False)."""
    proc = _start(args, pause)
    paused, err = _wait_for_pause(proc)
    if paused:
        proc.kill()  # SIGKILL: nothing of the process runs any more
        proc.wait()
        return True
    assert proc.returncode == 0, err
    return False


def _chain(i: int, phases: list[str], out: Path) -> tuple[str, Path, list[str], list[str]]:
    """Start a seeded run, kill it at each of ``phases`` in turn (resuming after each kill),
    then resume it to the end. Returns (model, run folder, phases killed at, leftovers seen)."""
    model, rng = ("mf", "lightgcn")[i % 2], random.Random(i)
    run, killed, leftovers = None, [], []
    for phase in phases:
        n = _reachable(run, model, phase)
        if n == 0 and phase == "train":
            phase, n = "checkpoint", _reachable(run, model, "checkpoint")  # every epoch ran: the final write is left
        assert n > 0
        pause = f"{phase}:{rng.randint(1, min(n, 3))}"
        args = ["--model", model, *SMALL, "--out-dir", str(out)] if run is None else ["--resume", str(run), "--quiet"]
        assert _attempt(args, pause), f"{pause} not reached"
        run = run or next(out.iterdir())
        killed.append(phase)
        leftovers += [p.name for p in run.rglob(".*.tmp-*")]
        assert _checkpoints_complete(run)
    if run is None:  # no kill: the uninterrupted run
        assert not _attempt(["--model", model, *SMALL, "--out-dir", str(out)], None)
        run = next(out.iterdir())
    else:
        assert not _attempt(["--resume", str(run), "--quiet"], None)
    return model, run, killed, leftovers


@pytest.mark.slow
def test_runs_killed_anywhere_resume_to_the_uninterrupted_metrics(tmp_path):
    """20 SIGKILLs of seeded MF and LightGCN runs at seeded points spread over training,
    checkpoint writing, evaluation and the result files (HYBRIDREC_TEST_PAUSE stops the
    process at the chosen point for the kill); each run is resumed after each kill, and
    once complete its metrics.json and history equal those of the uninterrupted run. No
    checkpoint in sight after a kill is partial (a write killed midway leaves only a
    temporary folder, removed by the next resume)."""
    plan = ["train"] * 7 + ["checkpoint"] * 7 + ["evaluate"] * 4 + ["write"] * 2
    random.Random(17).shuffle(plan)
    order = {"train": 0, "checkpoint": 0, "evaluate": 1, "write": 1}  # training's kills before the model finished
    chains = [sorted(plan[k:k + 4], key=order.get) for k in range(0, 20, 4)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as ex:
        refs = list(ex.map(lambda m: _chain(0 if m == "mf" else 1, [], tmp_path / f"ref-{m}")[:2], ("mf", "lightgcn")))
        done = list(ex.map(lambda i: _chain(i, chains[i], tmp_path / f"chain{i}"), range(len(chains))))
    refs = dict(refs)
    kills = {p: 0 for p in order}
    for model, run, killed, _ in done:
        assert _results(run) == _results(refs[model]), run
        assert _losses(run) == _losses(refs[model]), run
        assert not list(run.rglob(".*.tmp-*")), "a dead writer's leftovers survived the resume"
        for p in killed:
            kills[p] += 1
    leftovers = [name for *_, seen in done for name in seen]
    print(f"kills per phase: {kills}; temporary folders seen after kills: {len(leftovers)}; "
          f"{time.perf_counter() - t0:.0f}s")
    assert sum(kills.values()) == 20 and all(kills[p] >= 2 for p in kills)
    assert leftovers  # kills inside checkpoint writes left half-written folders, and none was read
