"""BPR training of the embedding models (MF, LightGCN, NGCF, the hybrid): the step, and
:func:`train_bpr`, which runs it in the shared :func:`~hybridrec.train.loop.fit_loop`."""

from __future__ import annotations

import logging
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..data import Interactions
from . import checkpoint
from .distributed import DistContext
from .loop import TrainHistory, fit_loop, minibatch_epoch, ranking_validator
from .losses import bpr_loss, l2_penalty
from .sampling import build_sampler


log = logging.getLogger("hybridrec.train")


def bpr_step(
    module: nn.Module,
    train: Interactions,
    cfg: TrainConfig,
    *,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    dist: DistContext | None = None,
    forward: nn.Module | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The BPR loss of a batch of ``train`` rows, as a step for
    :func:`~hybridrec.train.loop.minibatch_epoch`.

    Each step runs the full ``module()`` forward (the ``(user_emb, item_emb)`` tables),
    samples one negative per positive with ``cfg.negatives`` (from ``generator``) and
    returns ``bpr_loss`` plus ``cfg.l2`` times the L2 penalty on ``module.initial(u, i, j)``.

    With ``dist`` (a data-parallel run; ``forward`` is the DDP-wrapped module), every process
    draws the same batch and negatives and takes the loss over its own share of the rows,
    scaled so that DDP's average of the gradients is the gradient of the whole batch's loss:
    ``world_size / B`` times the share's summed terms.
    """
    sampler = build_sampler(cfg.negatives, train.to_csr(), device=device, **cfg.negative_options)
    users_all = torch.as_tensor(train.users, device=device)
    items_all = torch.as_tensor(train.items, device=device)
    forward = module if forward is None else forward

    def step(rows: torch.Tensor) -> torch.Tensor:
        u, p = users_all[rows], items_all[rows]
        user_emb, item_emb = forward()
        neg = sampler.sample(u, generator, user_emb=user_emb.detach(), item_emb=item_emb.detach())
        if dist is not None:
            return _share_loss(module, cfg, dist, user_emb, item_emb, u, p, neg)
        eu = user_emb[u]
        loss = bpr_loss((eu * item_emb[p]).sum(-1), (eu * item_emb[neg]).sum(-1))
        if cfg.l2 > 0:
            loss = loss + cfg.l2 * l2_penalty(*module.initial(u, p, neg))
        return loss

    return step


def _share_loss(module, cfg: TrainConfig, dist: DistContext, user_emb, item_emb, u, p, neg) -> torch.Tensor:
    """This process's part of the batch loss, times ``world_size`` (DDP averages gradients)."""
    b = len(u)
    mine = dist.share(b)
    u, p, neg = u[mine], p[mine], neg[mine]
    eu = user_emb[u]
    loss = -F.logsigmoid((eu * item_emb[p]).sum(-1) - (eu * item_emb[neg]).sum(-1)).sum() / b
    if cfg.l2 > 0:
        loss = loss + cfg.l2 * sum(e.pow(2).sum() for e in module.initial(u, p, neg)) / (2 * b)
    return loss * dist.world_size


def train_bpr(
    module: nn.Module,
    train: Interactions,
    valid: Interactions | None,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    eval_batch_size: int | None = None,
    dist: DistContext | None = None,
) -> TrainHistory:
    """Train ``module`` with BPR on ``train``; early-stop on ``valid`` if given.

    ``module()`` must return the final ``(user_emb, item_emb)`` tables and
    ``module.initial(users, pos, neg)`` the layer-0 embeddings the L2 penalty applies to.
    Each epoch visits every training interaction once in a seeded random order, with one
    sampled negative per positive. When ``valid`` has interactions and
    ``cfg.eval_every > 0``, the weights with the best ``cfg.valid_metric`` are restored at
    the end, and training stops after ``cfg.patience`` evaluations without improvement.

    Validation rows of items with no training interaction are left out of early stopping:
    an id-embedding model cannot learn anything about them from ``train``, so they only add
    noise to the choice of epoch (and, on a cold-item split whose validation holds cold
    items, tie that choice to the very items a hybrid calibrates on).

    Inside a :func:`~hybridrec.train.checkpoint.checkpointing` block, training is
    checkpointed and resumes from the block's folder (the optimiser and the sampling
    generator are part of the checkpoint).
    """
    device = torch.device(device)
    if valid is not None and len(valid):
        learnable = train.item_counts()[valid.items] > 0
        if not learnable.all():
            log.info("early stopping on %d of %d validation rows: %d are of items with no training interaction",
                     int(learnable.sum()), len(valid), int((~learnable).sum()))
            valid = valid.subset(learnable)
    gen = torch.Generator(device=device).manual_seed(seed)
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)
    validate = ranking_validator(module, train, valid, cfg, batch_size=eval_batch_size)
    desc = f"train {type(module).__name__}"
    if dist is not None:  # DDP: the same batches and negatives everywhere, one share of each batch per process
        net, opt = dist.accelerator.prepare(module, opt)
        step = bpr_step(module, train, cfg, generator=gen, device=device, dist=dist, forward=net)
        epoch = minibatch_epoch(step, opt, len(train), cfg.batch_size, generator=gen, device=device, lr_at=cfg.lr_at)

        def run_epoch(e: int) -> dict:  # the whole batch's loss: the shares' scaled losses averaged
            row = epoch(e)
            loss = torch.tensor(row["loss"], dtype=torch.float64, device=device)
            return {**row, "loss": float(dist.accelerator.reduce(loss, reduction="mean"))}

        return fit_loop(module, run_epoch, cfg, validate=validate, desc=desc, show_progress=dist.is_main)
    step = bpr_step(module, train, cfg, generator=gen, device=device)
    run_epoch = minibatch_epoch(step, opt, len(train), cfg.batch_size, generator=gen, device=device, lr_at=cfg.lr_at)
    checkpoint.attach(optimizer=opt, generators={"sampling": gen})  # resumable inside a checkpointing block
    return fit_loop(module, run_epoch, cfg, validate=validate, desc=desc)
