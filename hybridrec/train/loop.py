"""The training loop every trainable model shares: epochs, validation, early stopping and
restoring the best weights. A model plugs in its epoch (``run_epoch``), usually built by
:func:`minibatch_epoch` from a step function, and its validation (``validate``)."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..config import TrainConfig
from ..data import Interactions, Split
from ..support.progress import progress_bar
from . import checkpoint

log = logging.getLogger("hybridrec.train")


@dataclass
class TrainHistory:
    """What happened during training: one row per epoch, and the epoch kept."""

    rows: list = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False
    seconds: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> "TrainHistory":
        """Inverse of :meth:`to_dict`."""
        return cls(d["epochs"], d["best_epoch"], d["best_value"], d["stopped_early"], d["seconds"])

    def losses(self) -> list[float]:
        return [r["loss"] for r in self.rows]

    def to_dict(self) -> dict:
        return {
            "epochs": self.rows,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "stopped_early": self.stopped_early,
            "seconds": self.seconds,
        }


class TrainingDiverged(RuntimeError):
    """Training produced a non-finite or exploding loss, or non-finite weights."""


#: an epoch loss above this many times ``max(first epoch's loss, 1)`` counts as exploding.
EXPLODE_FACTOR = 1e3


def check_divergence(module: nn.Module, row: dict, first_loss: float | None, cfg: TrainConfig) -> None:
    """Raise :class:`TrainingDiverged` when the epoch's loss is NaN/inf or has exploded, or
    a weight is no longer finite; the message names the likely cause and what to change."""
    loss = row.get("loss")
    problem = None
    if loss is not None and not math.isfinite(loss):
        problem = f"the loss is {loss}"
    elif loss is not None and first_loss is not None and loss > EXPLODE_FACTOR * max(first_loss, 1.0):
        problem = f"the loss exploded from {first_loss:.4g} to {loss:.4g}"
    elif not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
        problem = "the weights are no longer finite"
    if problem:
        raise TrainingDiverged(
            f"training diverged at epoch {row['epoch']}: {problem}. The learning rate (train.lr={cfg.lr:g}) is "
            f"likely too high, or the L2 weight (train.l2={cfg.l2:g}) too large: lower them, e.g. "
            f"--set train.lr={cfg.lr / 10:g}")


def _default_postfix(row: dict) -> dict:
    return {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items() if k != "epoch"}


def fit_loop(
    module: nn.Module,
    run_epoch: Callable[[int], dict],
    cfg: TrainConfig,
    *,
    validate: Callable[[], float] | None = None,
    desc: str = "train",
    show_progress: bool = True,
    postfix: Callable[[dict], dict] | None = None,
) -> TrainHistory:
    """Train ``module`` for up to ``cfg.epochs`` epochs; early-stop on ``validate`` if given.

    Each epoch (1-based) sets ``module.train()`` and calls ``run_epoch(epoch)``, whose dict
    (e.g. ``{"loss": ...}``) follows ``"epoch"`` in the history row; ``"seconds"`` since the
    start comes next. Every ``cfg.eval_every`` epochs, ``validate()`` runs in eval mode and
    its value is stored under ``cfg.valid_metric`` (higher is better): the best weights are
    kept and restored at the end, and training stops after ``cfg.patience`` evaluations
    without improvement. Without validation the last epoch is kept. A NaN/inf or exploding
    loss, or non-finite weights, stop training with :class:`TrainingDiverged`. The progress bar
    (``desc``; shown when ``cfg.progress`` and ``show_progress``) shows ``postfix(row)``,
    by default every value but the epoch. Returns the :class:`TrainHistory`; ``module``
    is left in eval mode.

    Inside a :func:`~hybridrec.train.checkpoint.checkpointing` block that the trainer
    attached to, training starts from the checkpoint found there (a finished one returns its
    history at once, its weights loaded); the state at each epoch's end is kept, and written
    every ``every`` epochs; SIGINT/SIGTERM stop training at the next batch boundary, write
    the last completed epoch and raise :class:`~hybridrec.train.checkpoint.TrainingInterrupted`;
    the end writes a finished checkpoint (the kept weights and the history).
    """
    do_valid = validate is not None and cfg.eval_every > 0
    hist = TrainHistory()
    best_state, bad_evals, first_loss, start = None, 0, None, 0
    t0 = time.perf_counter()
    ckpt = _checkpoint_for_this_training()
    if ckpt is not None:
        saved = ckpt.load()
        if saved is not None:
            loop, best_state = ckpt.restore(saved, module, cfg)
            hist = TrainHistory.from_dict(loop["history"])
            bad_evals, first_loss, start = loop["bad_evals"], loop["first_loss"], loop["epoch"]
            if hasattr(run_epoch, "initial_loss"):
                run_epoch.initial_loss = loop["initial_loss"]
            ckpt.earlier_seconds = loop["seconds"]
            t0 -= loop["seconds"]  # seconds go on from the interrupted run's
            if loop["finished"]:
                log.info("%s: finished before (checkpoint %s): its weights are loaded", desc, ckpt.folder)
                module.eval()
                return hist
            log.info("%s: resuming after epoch %d from checkpoint %s", desc, start, ckpt.folder)

    def snapshot(epoch: int, best: dict | None, finished: bool = False) -> checkpoint.Snapshot:
        loop = {"epoch": epoch, "finished": finished, "history": copy.deepcopy(hist.to_dict()),
                "bad_evals": bad_evals, "first_loss": first_loss,
                "initial_loss": getattr(run_epoch, "initial_loss", None), "seconds": time.perf_counter() - t0}
        return ckpt.capture(module, loop, best, cfg, with_optimizers=not finished)

    epochs = range(0) if hist.stopped_early else range(start + 1, cfg.epochs + 1)
    bar = progress_bar(epochs, desc=desc, enabled=cfg.progress and show_progress, unit="epoch",
                       **({"initial": start, "total": cfg.epochs} if start else {}))
    with ckpt.signals() if ckpt is not None else contextlib.nullcontext():
        try:
            if ckpt is not None:
                ckpt.epoch_end(snapshot(start, best_state))  # where a stop during the first epoch goes back to
            for epoch in bar:
                module.train()
                try:
                    row = {"epoch": epoch, **run_epoch(epoch)}
                except checkpoint.StopRequested:
                    ckpt.interrupt()
                row["seconds"] = time.perf_counter() - t0
                if first_loss is None:  # the untrained model's loss, when the epoch measured it, else epoch 1's
                    first_loss = getattr(run_epoch, "initial_loss", None) or row.get("loss")
                check_divergence(module, row, first_loss, cfg)
                if do_valid and epoch % cfg.eval_every == 0:
                    module.eval()
                    row[cfg.valid_metric] = value = validate()
                    if hist.best_value is None or value > hist.best_value:
                        hist.best_value, hist.best_epoch, bad_evals = value, epoch, 0
                        best_state = copy.deepcopy(module.state_dict())
                    else:
                        bad_evals += 1
                hist.rows.append(row)
                bar.set_postfix((postfix or _default_postfix)(row))
                log.info("epoch %d: %s", epoch, row)
                stop = do_valid and bad_evals >= cfg.patience
                if stop:
                    hist.stopped_early = True
                    log.info("early stop at epoch %d; best %s=%.4f at epoch %d", epoch, cfg.valid_metric,
                             hist.best_value, hist.best_epoch)
                if ckpt is not None:
                    ckpt.epoch_end(snapshot(epoch, best_state))
                if stop:
                    break
        finally:
            bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        hist.best_epoch = hist.rows[-1]["epoch"] if hist.rows else None
    hist.seconds = time.perf_counter() - t0
    module.eval()
    if ckpt is not None:
        ckpt.write(snapshot(hist.rows[-1]["epoch"] if hist.rows else 0, None, finished=True))
    return hist


def _checkpoint_for_this_training() -> checkpoint.Checkpointer | None:
    """The active checkpoint when the trainer attached to it and no earlier training in the
    same block used it; else None (training runs as without checkpoints)."""
    ckpt = checkpoint.active()
    if ckpt is None:
        return None
    if not ckpt.attached or ckpt.used:
        log.info("training without checkpoints: %s", "the trainer attached no optimiser and generators"
                 if not ckpt.attached else f"{ckpt.folder} belongs to an earlier training in the same block")
        return None
    ckpt.used = True
    return ckpt


def minibatch_epoch(
    step: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    n: int,
    batch_size: int,
    *,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    lr_at: Callable[[int], float] | None = None,
) -> Callable[[int], dict]:
    """A ``run_epoch`` for :func:`fit_loop`: each epoch visits rows ``0..n-1`` in a random
    order drawn from ``generator`` (one ``torch.randperm``), in batches of ``batch_size``;
    ``step(rows)`` returns the batch's loss, which is minimised with ``optimizer``.
    ``lr_at(epoch)`` sets every parameter group's learning rate at the start of the epoch
    (a schedule of the epoch alone, so a resumed run needs no scheduler state).
    The epoch reports ``{"loss": mean batch loss}``; ``run_epoch.initial_loss`` keeps the
    very first batch's loss (before any update), the reference for divergence checks."""
    n_batches = (n + batch_size - 1) // batch_size

    def run_epoch(epoch: int) -> dict:
        if lr_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch)
        perm = torch.randperm(n, generator=generator, device=device)
        total = torch.zeros((), device=device)
        for b in range(n_batches):
            loss = step(perm[b * batch_size : (b + 1) * batch_size])
            if run_epoch.initial_loss is None:
                run_epoch.initial_loss = float(loss.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            if b == 0:
                checkpoint.fault_point("train")
            if checkpoint.stop_requested():  # SIGINT/SIGTERM during checkpointed training: drop this epoch
                raise checkpoint.StopRequested
        return {"loss": float(total) / n_batches}

    run_epoch.initial_loss = None

    return run_epoch


def ranking_validator(
    embed: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    train: Interactions,
    valid: Interactions | None,
    cfg: TrainConfig,
    *,
    batch_size: int | None = None,
) -> Callable[[], float] | None:
    """A ``validate`` for :func:`fit_loop`: ``cfg.valid_metric`` of the dot-product scores of
    ``embed()`` (``(user_emb, item_emb)``, computed without gradients) on ``valid``, with
    ``train`` masked. None when ``valid`` is missing or empty. Raises ``ValueError`` for a
    malformed ``cfg.valid_metric`` either way."""
    metric, k = parse_metric(cfg.valid_metric)
    if valid is None or len(valid) == 0:
        return None
    split = Split(train=train, test=valid, kind="validation")

    def validate() -> float:
        from ..eval import EmbeddingScorer, evaluate  # imported here: eval must not be needed to train

        with torch.no_grad():
            scorer = EmbeddingScorer(*embed())
        res = evaluate(scorer, split, ks=[k], metrics=[metric], batch_size=batch_size)
        return res.metrics["all"][cfg.valid_metric]

    return validate


def parse_metric(text: str) -> tuple[str, int]:
    """``"recall@20"`` -> ("recall", 20); ``"mrr"`` (full ranking, no cut-off) -> ("mrr", 1)."""
    if "@" not in text:
        return text, 1
    try:
        name, k = text.split("@")
        return name, int(k)
    except ValueError:
        raise ValueError(f"valid_metric must look like 'recall@20' or 'mrr', got {text!r}") from None
