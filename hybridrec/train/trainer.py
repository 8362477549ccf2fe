"""BPR training loop with early stopping, shared by every embedding model."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..config import TrainConfig
from ..data import Interactions, Split
from .losses import bpr_loss, l2_penalty
from .sampling import build_sampler

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


def train_bpr(
    module: nn.Module,
    train: Interactions,
    valid: Interactions | None,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    eval_batch_size: int | None = None,
) -> TrainHistory:
    """Train ``module`` with BPR on ``train``; early-stop on ``valid`` if given.

    ``module()`` must return the final ``(user_emb, item_emb)`` tables and
    ``module.initial(users, pos, neg)`` the layer-0 embeddings the L2 penalty applies to.
    Each epoch visits every training interaction once in a seeded random order, with one
    sampled negative per positive. When ``valid`` has interactions and
    ``cfg.eval_every > 0``, the weights with the best ``cfg.valid_metric`` are restored at
    the end, and training stops after ``cfg.patience`` evaluations without improvement.
    """
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    sampler = build_sampler(cfg.negatives, train.to_csr(), device=device, **cfg.negative_options)
    users_all = torch.as_tensor(train.users, device=device)
    items_all = torch.as_tensor(train.items, device=device)
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)

    metric_name, k = _parse_metric(cfg.valid_metric)
    do_valid = valid is not None and len(valid) > 0 and cfg.eval_every > 0
    valid_split = Split(train=train, test=valid, kind="validation") if do_valid else None

    hist = TrainHistory()
    best_state, bad_evals = None, 0
    n = len(users_all)
    n_batches = (n + cfg.batch_size - 1) // cfg.batch_size
    t0 = time.perf_counter()
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"train {type(module).__name__}", disable=not cfg.progress, unit="epoch")
    for epoch in bar:
        module.train()
        perm = torch.randperm(n, generator=gen, device=device)
        total = torch.zeros((), device=device)
        for b in range(n_batches):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            u, p = users_all[idx], items_all[idx]
            user_emb, item_emb = module()
            neg = sampler.sample(u, gen, user_emb=user_emb.detach(), item_emb=item_emb.detach())
            eu = user_emb[u]
            pos_s = (eu * item_emb[p]).sum(-1)
            neg_s = (eu * item_emb[neg]).sum(-1)
            loss = bpr_loss(pos_s, neg_s)
            if cfg.l2 > 0:
                loss = loss + cfg.l2 * l2_penalty(*module.initial(u, p, neg))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        row = {"epoch": epoch, "loss": float(total) / n_batches, "seconds": time.perf_counter() - t0}
        if do_valid and epoch % cfg.eval_every == 0:
            from ..eval import EmbeddingScorer, evaluate  # imported here: eval must not be needed to train

            module.eval()
            with torch.no_grad():
                scorer = EmbeddingScorer(*module())
            res = evaluate(scorer, valid_split, ks=[k], metrics=[metric_name], batch_size=eval_batch_size)
            value = res.metrics["all"][cfg.valid_metric]
            row[cfg.valid_metric] = value
            if hist.best_value is None or value > hist.best_value:
                hist.best_value, hist.best_epoch, bad_evals = value, epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                bad_evals += 1
        hist.rows.append(row)
        bar.set_postfix({k_: (f"{v:.4f}" if isinstance(v, float) else v) for k_, v in row.items() if k_ != "epoch"})
        log.info("epoch %d: %s", epoch, row)
        if do_valid and bad_evals >= cfg.patience:
            hist.stopped_early = True
            log.info("early stop at epoch %d; best %s=%.4f at epoch %d", epoch, cfg.valid_metric, hist.best_value, hist.best_epoch)
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        hist.best_epoch = hist.rows[-1]["epoch"] if hist.rows else None
    hist.seconds = time.perf_counter() - t0
    module.eval()
    return hist


def _parse_metric(text: str) -> tuple[str, int]:
    """``"recall@20"`` -> ("recall", 20); ``"mrr"`` (full ranking, no cut-off) -> ("mrr", 1)."""
    if "@" not in text:
        return text, 1
    try:
        name, k = text.split("@")
        return name, int(k)
    except ValueError:
        raise ValueError(f"valid_metric must look like 'recall@20' or 'mrr', got {text!r}") from None
