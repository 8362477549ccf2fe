"""Checkpoints of training, so that an interrupted run resumes exactly where it stopped.

A checkpoint folder (the runner uses ``run_dir/checkpoints/<model>``) holds everything that
decides the rest of a training run, so that on the CPU a resumed run gives bit-identical
weights, history and metrics to one that was never interrupted:

* ``tensors.safetensors``: the module's state (``module.*``), the best weights kept for early
  stopping (``best.*``), each optimiser's state (``optim.<i>.<param>.<key>``), the states of
  the trainer's generators (``generator.<name>``: shuffling, negative sampling) and of the
  global generators (``rng.torch``, which NGCF's dropout draws from, ``rng.cuda.<d>``,
  ``rng.numpy``);
* ``state.json``: the epoch, the history rows, the early-stopping counters, the loss the
  divergence check compares with, Python's ``random`` state, the optimisers' settings, the
  train settings the run used and the SHA-256 of the tensors file.

No pickles: tensors in safetensors, the rest JSON. A folder is written whole through
:func:`hybridrec.io.atomic_folder`, so a process killed mid-write leaves the previous
checkpoint (or none), never half of one; a damaged file is a :class:`CheckpointError`.

The trainer finds its checkpoint through a context rather than an argument, so no model's
signature changes: the runner opens :func:`checkpointing` around ``model.fit``, the trainer
(:func:`~hybridrec.train.bpr.train_bpr`) :func:`attach`-es its optimiser and generators, and
:func:`~hybridrec.train.loop.fit_loop` restores, snapshots and writes. With no context open,
or nothing attached, training runs exactly as without this module.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
import logging
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..io import atomic_folder, clean_stale, save_tensors, write_json

log = logging.getLogger("hybridrec.train")

FORMAT, VERSION = "hybridrec-checkpoint", 1
STATE, TENSORS = "state.json", "tensors.safetensors"
#: train settings that do not change what training computes (a resumed run may differ in them)
_NEUTRAL = ("progress", "checkpoint_every")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from: damaged, or written by other settings."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training after the checkpoint of the last completed epoch
    was written. ``epoch`` is the epoch that was running (resuming starts it again)."""

    def __init__(self, signum: int, epoch: int, folder: Path):
        super().__init__(f"interrupted at epoch {epoch}; checkpoint written to {folder}")
        self.signum, self.epoch, self.folder = signum, epoch, folder

    @property
    def exit_code(self) -> int:
        """The shell's code for death by this signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


class StopRequested(Exception):
    """Raised by a ``run_epoch`` at a batch boundary once a stop signal arrived."""


@dataclass
class Snapshot:
    """The training state at an epoch boundary: JSON-able ``meta`` and named ``tensors``."""

    meta: dict
    tensors: dict


def train_settings(cfg) -> dict:
    """The train settings a checkpoint must agree with (JSON-normalised)."""
    d = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _NEUTRAL}
    return json.loads(json.dumps(d))


class Checkpointer:
    """The checkpoint of one training: where it goes, how often, and what it holds.

    Args:
        folder: the checkpoint folder (read on start, replaced on each write).
        every: epochs between periodic checkpoints (0: only on a signal and at the end).
    """

    def __init__(self, folder: str | os.PathLike, every: int = 1):
        self.folder = Path(folder)
        self.every = int(every)
        self.optimizers: list[torch.optim.Optimizer] = []
        self.generators: dict[str, torch.Generator] = {}
        self.attached = False
        self.used = False
        self.signal: int | None = None
        #: training seconds recorded before this process resumed (0 for a fresh start)
        self.earlier_seconds = 0.0
        self._last: Snapshot | None = None
        self._written: int | None = None  # epoch of the snapshot last written

    # -- what the trainer attaches -----------------------------------------------------
    def attach(self, *, optimizer=None, optimizers=(), generators: dict | None = None) -> None:
        self.optimizers = ([optimizer] if optimizer is not None else []) + list(optimizers)
        self.generators = dict(generators or {})
        self.attached = True

    # -- capture and restore -----------------------------------------------------------
    def capture(self, module: torch.nn.Module, loop: dict, best: dict | None, cfg, *,
                with_optimizers: bool = True) -> Snapshot:
        """The current state (copies, so training may go on)."""
        tensors = {f"module.{k}": v.detach().clone() for k, v in module.state_dict().items()}
        tensors.update({f"best.{k}": v for k, v in (best or {}).items()})  # best is a copy already, never edited
        optims = []
        for i, opt in enumerate(self.optimizers if with_optimizers else []):
            sd = opt.state_dict()
            state = {}
            for p, entries in sd["state"].items():
                state[str(p)] = {}
                for key, v in entries.items():
                    if torch.is_tensor(v):
                        tensors[f"optim.{i}.{p}.{key}"] = v.detach().clone()
                        state[str(p)][key] = {"tensor": f"optim.{i}.{p}.{key}"}
                    else:
                        state[str(p)][key] = {"value": v}
            optims.append({"state": state, "param_groups": json.loads(json.dumps(sd["param_groups"]))})
        for name, g in self.generators.items():
            tensors[f"generator.{name}"] = g.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            tensors.update({f"rng.cuda.{d}": s for d, s in enumerate(torch.cuda.get_rng_state_all())})
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
        version, internal, gauss = random.getstate()
        meta = {"format": FORMAT, "version": VERSION, "loop": loop, "optimizers": optims,
                "generators": sorted(self.generators), "train": train_settings(cfg),
                "rng": {"numpy": [kind, int(pos), int(has_gauss), float(cached)],
                        "python": [version, list(internal), gauss]}}
        return Snapshot(meta, tensors)

    def restore(self, snap: Snapshot, module: torch.nn.Module, cfg) -> tuple[dict, dict | None]:
        """Put ``snap`` back into ``module``, the attached optimisers and generators and the
        global generators; returns (the loop's state, the best weights or None)."""
        meta, t = snap.meta, snap.tensors
        ours = train_settings(cfg)
        if meta["train"] != ours:
            diff = sorted(k for k in set(ours) | set(meta["train"]) if ours.get(k) != meta["train"].get(k))
            raise CheckpointError(f"checkpoint {self.folder} was written with other train settings "
                                  f"({', '.join(diff)}); delete it to train this model from the start")
        try:
            module.load_state_dict({k[7:]: v for k, v in t.items() if k.startswith("module.")})
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint {self.folder} does not fit this model: {e}") from None
        if meta["optimizers"]:
            if len(meta["optimizers"]) != len(self.optimizers):
                raise CheckpointError(f"checkpoint {self.folder} holds {len(meta['optimizers'])} optimisers, "
                                      f"the trainer has {len(self.optimizers)}")
            for opt, saved in zip(self.optimizers, meta["optimizers"]):
                opt.load_state_dict(_optimizer_state(opt, saved, t))
        if sorted(self.generators) != meta["generators"]:
            raise CheckpointError(f"checkpoint {self.folder} holds generators {meta['generators']}, "
                                  f"the trainer has {sorted(self.generators)}")
        for name, g in self.generators.items():
            g.set_state(t[f"generator.{name}"])
        torch.set_rng_state(t["rng.torch"])
        cuda = [t[k] for k in sorted(t) if k.startswith("rng.cuda.")]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        kind, pos, has_gauss, cached = meta["rng"]["numpy"]
        np.random.set_state((kind, t["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = meta["rng"]["python"]
        random.setstate((version, tuple(internal), gauss))
        best = {k[5:]: v for k, v in t.items() if k.startswith("best.")} or None
        return meta["loop"], best

    # -- disk --------------------------------------------------------------------------
    def write(self, snap: Snapshot) -> None:
        """Replace the checkpoint folder with ``snap``, atomically."""
        def fill(tmp: Path) -> None:
            save_tensors(tmp / TENSORS, snap.tensors)
            fault_point("checkpoint")
            data = (tmp / TENSORS).read_bytes()
            write_json(tmp / STATE, {**snap.meta, "tensors": {"sha256": hashlib.sha256(data).hexdigest(),
                                                              "bytes": len(data)}})

        atomic_folder(self.folder, fill)
        self._written = snap.meta["loop"]["epoch"]

    def load(self) -> Snapshot | None:
        """The checkpoint in the folder, or None when there is none. What an interrupted
        write left beside the folder is cleaned up first; a damaged file or one from another
        format is a :class:`CheckpointError` (delete the folder to start that model again)."""
        clean_stale(self.folder)
        if not self.folder.is_dir():
            return None

        def damaged(why: str) -> CheckpointError:
            return CheckpointError(f"checkpoint {self.folder} is damaged ({why}); delete the folder to train "
                                   "this model from the start")

        try:
            meta = json.loads((self.folder / STATE).read_text(encoding="utf-8"))
            data = (self.folder / TENSORS).read_bytes()
        except (OSError, ValueError) as e:
            raise damaged(f"{type(e).__name__}: {e}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise damaged(f"{STATE} is not a {FORMAT} version {VERSION}")
        if hashlib.sha256(data).hexdigest() != meta.get("tensors", {}).get("sha256"):
            raise damaged(f"{TENSORS} does not match the SHA-256 recorded in {STATE}")
        from safetensors.torch import load

        self._written = meta["loop"]["epoch"]
        return Snapshot(meta, load(data))

    # -- the loop's calls --------------------------------------------------------------
    def epoch_end(self, snap: Snapshot) -> None:
        """Keep ``snap`` (the state after its epoch) for a signal; write it when due; stop
        here if a signal arrived."""
        self._last = snap
        epoch = snap.meta["loop"]["epoch"]
        if self.every > 0 and epoch > 0 and epoch % self.every == 0 and self._written != epoch:
            self.write(snap)
        if self.signal is not None:
            self.interrupt()

    def interrupt(self) -> None:
        """Write the last epoch-boundary snapshot (the running epoch is dropped) and raise
        :class:`TrainingInterrupted`."""
        epoch = self._last.meta["loop"]["epoch"]
        if self._written != epoch:
            self.write(self._last)
        log.info("training interrupted by %s during epoch %d; checkpoint of epoch %d written to %s",
                    signal.Signals(self.signal).name, epoch + 1, epoch, self.folder)
        raise TrainingInterrupted(self.signal, epoch + 1, self.folder)

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM ask training to stop (at the next batch boundary) while the
        block runs in the main thread; the previous handlers come back after it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.signal is None:
                self.signal = signum

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h if h is not None else signal.SIG_DFL)


def _optimizer_state(opt: torch.optim.Optimizer, saved: dict, tensors: dict) -> dict:
    """The ``state_dict`` of ``opt`` that ``saved`` (from :meth:`Checkpointer.capture`) describes."""
    state = {int(p): {k: tensors[v["tensor"]] if "tensor" in v else v["value"] for k, v in entries.items()}
             for p, entries in saved["state"].items()}
    groups = []
    for now, group in zip(opt.param_groups, saved["param_groups"]):  # JSON made tuples (betas) lists
        groups.append({k: tuple(v) if isinstance(now.get(k), tuple) else v for k, v in group.items()})
    return {"state": state, "param_groups": groups}


_ACTIVE: contextvars.ContextVar[Checkpointer | None] = contextvars.ContextVar("hybridrec_checkpoint", default=None)


@contextlib.contextmanager
def checkpointing(folder: str | os.PathLike, every: int = 1) -> Iterator[Checkpointer]:
    """Checkpoint the training that runs inside the block into ``folder`` every ``every``
    epochs (and on SIGINT/SIGTERM, and when it ends); a checkpoint already there is resumed
    from, and a finished one skips training. The trainer must :func:`attach` to it."""
    ckpt = Checkpointer(folder, every)
    token = _ACTIVE.set(ckpt)
    try:
        yield ckpt
    finally:
        _ACTIVE.reset(token)


def active() -> Checkpointer | None:
    """The checkpoint of the innermost :func:`checkpointing` block, or None."""
    return _ACTIVE.get()


def attach(*, optimizer=None, optimizers=(), generators: dict | None = None) -> None:
    """Give the active checkpoint (if any) the trainer's optimiser(s) and the generators its
    epochs draw from (e.g. ``{"sampling": gen}``); call it just before ``fit_loop``."""
    ckpt = _ACTIVE.get()
    if ckpt is not None:
        ckpt.attach(optimizer=optimizer, optimizers=optimizers, generators=generators)


def stop_requested() -> bool:
    """Whether a stop signal arrived during checkpointed training (checked per batch)."""
    ckpt = _ACTIVE.get()
    return ckpt is not None and ckpt.signal is not None


_FAULT_COUNTS: dict[str, int] = {}


def fault_point(phase: str) -> None:
    """A place tests kill the process at: with ``HYBRIDREC_TEST_PAUSE=<phase>:<n>`` set, the
    ``n``-th time ``phase`` is reached a line ``hybridrec-test-pause <phase> <n>`` goes to
    stderr and the process waits (up to 60 s, or until a stop signal) for the test's signal.
    Phases: ``train`` (after an epoch's first batch), ``checkpoint`` (inside a checkpoint
    write), ``evaluate`` (a model evaluated, not yet saved), ``write`` (between result files).
    Without the variable this does nothing."""
    spec = os.environ.get("HYBRIDREC_TEST_PAUSE")
    if not spec or spec.partition(":")[0] != phase:
        return
    _FAULT_COUNTS[phase] = n = _FAULT_COUNTS.get(phase, 0) + 1
    if str(n) != (spec.partition(":")[2] or "1"):
        return
    print(f"hybridrec-test-pause {phase} {n}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stop_requested():
        time.sleep(0.01)
