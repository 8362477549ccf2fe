"""The training loop every trainable model shares: epochs, validation, early stopping and
restoring the best weights. A model plugs in its epoch (``run_epoch``), usually built by
:func:`minibatch_epoch` from a step function, and its validation (``validate``)."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..config import TrainConfig
from ..data import Interactions, Split
from ..progress import progress_bar

log = logging.getLogger("hybridrec.train")


@dataclass
class TrainHistory:
    """What happened during training: one row per epoch, and the epoch kept."""

    rows: list = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False
    seconds: float = 0.0

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
    without improvement. Without validation the last epoch is kept. The progress bar
    (``desc``; shown when ``cfg.progress`` and ``show_progress``) shows ``postfix(row)``,
    by default every value but the epoch. Returns the :class:`TrainHistory`; ``module``
    is left in eval mode.
    """
    do_valid = validate is not None and cfg.eval_every > 0
    hist = TrainHistory()
    best_state, bad_evals = None, 0
    t0 = time.perf_counter()
    bar = progress_bar(range(1, cfg.epochs + 1), desc=desc, enabled=cfg.progress and show_progress, unit="epoch")
    for epoch in bar:
        module.train()
        row = {"epoch": epoch, **run_epoch(epoch)}
        row["seconds"] = time.perf_counter() - t0
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
        if do_valid and bad_evals >= cfg.patience:
            hist.stopped_early = True
            log.info("early stop at epoch %d; best %s=%.4f at epoch %d", epoch, cfg.valid_metric, hist.best_value,
                     hist.best_epoch)
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        hist.best_epoch = hist.rows[-1]["epoch"] if hist.rows else None
    hist.seconds = time.perf_counter() - t0
    module.eval()
    return hist


def minibatch_epoch(
    step: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    n: int,
    batch_size: int,
    *,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
) -> Callable[[int], dict]:
    """A ``run_epoch`` for :func:`fit_loop`: each epoch visits rows ``0..n-1`` in a random
    order drawn from ``generator`` (one ``torch.randperm``), in batches of ``batch_size``;
    ``step(rows)`` returns the batch's loss, which is minimised with ``optimizer``.
    The epoch reports ``{"loss": mean batch loss}``."""
    n_batches = (n + batch_size - 1) // batch_size

    def run_epoch(epoch: int) -> dict:
        perm = torch.randperm(n, generator=generator, device=device)
        total = torch.zeros((), device=device)
        for b in range(n_batches):
            loss = step(perm[b * batch_size : (b + 1) * batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        return {"loss": float(total) / n_batches}

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
