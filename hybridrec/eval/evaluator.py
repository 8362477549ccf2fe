"""Full-ranking evaluation: every user's scores over the whole catalogue, seen items masked.

For each batch of users the model scores all items (``[B, n_items]``, never the full
users x items matrix), the items each user interacted with in training (and validation,
when scoring the test set) are set to ``-inf``, and each item group ranks its items, finds
the hits in the top ``max(ks)`` and the full-ranking rank of the first target. Metrics are
kept per user and averaged at the end, so results do not depend on the batch size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..data import Split
from . import metrics as M
from .groups import check_groups, default_groups
from .ranking import best_target_score, count_greater, first_relevant_rank, is_target, topk_indices
from .result import EvalResult

Tensor = torch.Tensor
DEFAULT_METRICS = ("recall", "precision", "ndcg", "mrr", "hitrate")


@dataclass
class _Group:
    """One group's targets over the evaluated users, in group-local item columns."""

    name: str
    items: Tensor | None  # catalogue columns ranked; None: the whole catalogue
    n_items: int
    n_rel: Tensor  # long [n_eval] target items per evaluated user
    indptr: np.ndarray  # target CSR row pointers (host, for slicing)
    rows: Tensor  # long [nnz] evaluated-user row of each target
    cols: Tensor  # long [nnz] group-local column of each target
    keys: Tensor  # sorted rows * n_items + cols


def _csr_parts(m: sp.csr_matrix, device) -> tuple[np.ndarray, Tensor, Tensor]:
    m.sort_indices()
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=np.int64), device=device)
    return m.indptr.astype(np.int64), as_t(rows), as_t(m.indices)


def target_parts(split: Split, target: str):
    """``(held-out interactions, [interactions masked from ranking])`` for ``target``:
    ``"test"`` masks train and validation, ``"valid"`` masks train."""
    if target == "test":
        return split.test, [split.train] + ([split.valid] if split.valid is not None else [])
    if target == "valid":
        if split.valid is None:
            raise ValueError("target='valid' but the split has no validation set")
        return split.valid, [split.train]
    raise ValueError(f"target must be 'test' or 'valid', got {target!r}")


def _plan(split: Split, target: str, groups, k_max: int, device):
    """Evaluated users, their seen-item mask and each group's targets."""
    tgt, seen_parts = target_parts(split, target)
    n_items = split.n_items
    seen = sum(p.to_csr() for p in seen_parts).tocsr()
    seen.data[:] = 1.0
    t = tgt.to_csr()
    t = (t - t.multiply(seen)).tocsr()  # an item already seen is not a target
    t.eliminate_zeros()
    if groups is None:
        masks = default_groups(split, t.indices, k_max)
        check_groups(masks, n_items, k_max)
    else:
        masks = check_groups(groups, n_items, k_max)
    n_rel = {g: np.asarray(t @ m.astype(np.float32)).astype(np.int64) for g, m in masks.items()}
    users = np.flatnonzero(np.sum(list(n_rel.values()), axis=0) > 0)
    t_users = t[users]
    out = []
    for g, mask in masks.items():
        whole = bool(mask.all())
        items = np.flatnonzero(mask)
        indptr, rows, cols = _csr_parts(t_users if whole else t_users[:, items].tocsr(), device)
        out.append(_Group(
            name=g,
            items=None if whole else torch.as_tensor(items, device=device),
            n_items=len(items),
            n_rel=torch.as_tensor(n_rel[g][users], device=device),
            indptr=indptr, rows=rows, cols=cols,
            keys=rows * len(items) + cols,  # sorted: rows ascending, columns sorted per row
        ))
    return users, _csr_parts(seen[users], device), out


def _check_scores(s, b: int, n_items: int, device) -> Tensor:
    if not isinstance(s, Tensor) or s.shape != (b, n_items):
        shape = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
        raise ValueError(f"score_users must return a [{b}, {n_items}] tensor, got {shape}")
    s = s.detach().to(device)
    if torch.isnan(s).any():  # NaN ranks arbitrarily: metrics from it would be made up
        raise ValueError(f"the model gave NaN scores ({int(torch.isnan(s).any(1).sum())} of {b} users in a batch); "
                         "its weights are not finite, usually because training diverged: lower train.lr")
    if s.dtype not in (torch.float32, torch.float64):
        s = s.float()
    elif s._base is not None or not s.is_contiguous():
        s = s.contiguous() if not s.is_contiguous() else s.clone()  # masked in place below
    return s


@torch.no_grad()
def evaluate(
    model,
    split: Split,
    *,
    ks=(10, 20),
    metrics=DEFAULT_METRICS,
    target: str = "test",
    batch_size: int | None = None,
    groups: dict[str, np.ndarray] | None = None,
    device=None,
    progress: bool = False,
    dist=None,
) -> EvalResult:
    """Full-ranking top-K evaluation of ``model`` on ``split``.

    Args:
        model: anything with ``score_users(users: LongTensor) -> Tensor [B, n_items]``
            (higher is better, unmasked), or such a callable itself. The returned tensor
            is masked in place (views and non-contiguous tensors are copied first).
        split: train/test(/valid) interactions over one vocabulary.
        ks: cut-offs; all metrics at all cut-offs come from one top-``max(ks)`` list.
        metrics: names from :data:`hybridrec.eval.metrics.METRICS`: ``recall``,
            ``precision``, ``ndcg``, ``hitrate`` (reported per K as ``name@K``), ``mrr``
            (full ranking, reported as ``mrr``), ``mrr_at_k`` (truncated, ``mrr@K``).
        target: ``"test"`` (train and validation items masked) or ``"valid"`` (train
            items masked). Target items the user already saw in a masked set are dropped.
        batch_size: users per batch; default keeps a batch's scores near 10 MiB on CPU
            (measured fastest: larger blocks are slower to allocate) and 1 GiB on GPU.
        groups: ``{name: bool mask over items}``; each group ranks only its items and
            averages over users with a target item in it. Default: ``all``, plus ``warm``
            and ``cold`` (no training interaction) when a target item is cold.
        device: where to rank; default the model's ``device`` attribute, else CPU.
        progress: show a progress bar.
        dist: a data-parallel run's context (:func:`hybridrec.train.distributed.context`):
            each process ranks its contiguous share of the users and the per-user metrics
            are summed across processes, so every process gets the whole result (equal to
            one process's up to the order of a float64 sum). Call it on every process.

    Tied scores: the top-K list keeps ``torch.topk``'s order among ties; the full rank
    behind ``mrr`` counts only items scored strictly above the best target (ties in its
    favour) and agrees with the list (see :func:`~.ranking.first_relevant_rank`).

    Returns:
        :class:`EvalResult` with ``metrics[group]["recall@20"]``, ``n_users[group]``, ...

    Raises:
        ValueError: bad ``ks``, metric name, ``target``, group, or ``max(ks)`` larger than
            a group's number of items.
    """
    score_fn = getattr(model, "score_users", model)
    if not callable(score_fn):
        raise TypeError(f"model must have score_users() or be callable, got {type(model).__name__}")
    ks = tuple(sorted({int(k) for k in ((ks,) if isinstance(ks, int) else ks)}))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    names = M.check_metrics(metrics)
    k_max = ks[-1]
    device = torch.device(device if device is not None else getattr(model, "device", None) or "cpu")
    start = time.perf_counter()
    users, (s_ptr, s_rows, s_cols), plan = _plan(split, target, groups, k_max, device)
    n_eval, n_items = len(users), split.n_items
    if batch_size is None:  # CPU: blocks over ~10 MiB cost a page-faulting allocation each
        budget = 2**28 if device.type != "cpu" else 10 * 2**18
        batch_size = max(1, min(budget // max(n_items, 1), 8192))
    elif int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch_size = int(batch_size)
    keys = M.metric_keys(names, ks)
    store = {g.name: {k: torch.empty(n_eval, dtype=torch.float64, device=device) for k in keys}
             for g in plan}
    users_t = torch.as_tensor(users, device=getattr(model, "device", device))
    full_rank = "mrr" in names
    work: dict[str, Tensor] = {}  # per-group buffers for count_greater
    neg_inf = torch.tensor(float("-inf"), device=device)
    lo, hi = (0, n_eval) if dist is None else (dist.share(n_eval).start, dist.share(n_eval).stop)
    for i0 in _batches(hi - lo, batch_size, progress):
        i0 += lo
        i1 = min(i0 + batch_size, hi)
        scores = _check_scores(score_fn(users_t[i0:i1]), i1 - i0, n_items, device)
        a, z = s_ptr[i0], s_ptr[i1]
        scores.index_put_((s_rows[a:z] - i0, s_cols[a:z]), neg_inf.to(scores.dtype))
        batch_rows = torch.arange(i0, i1, device=device)
        for g in plan:
            sg = scores if g.items is None else scores.index_select(1, g.items)
            top = topk_indices(sg, k_max)
            hits = is_target(g.keys, batch_rows, top, g.n_items)
            if full_rank:
                a, z = g.indptr[i0], g.indptr[i1]
                best = best_target_score(sg, g.rows[a:z] - i0, g.cols[a:z])
                buf = work.get(g.name)
                if buf is None or buf.shape != sg.shape:
                    buf = work[g.name] = torch.empty_like(sg)
                n_greater = count_greater(sg, best, out=buf)
            else:
                n_greater = torch.zeros(i1 - i0, dtype=torch.long, device=device)
            first = first_relevant_rank(hits, n_greater)
            for key, v in M.compute(hits, g.n_rel[i0:i1], first, ks, names).items():
                store[g.name][key][i0:i1] = v
    result, n_users, n_group_items = {}, {}, {}
    sums = None
    if dist is not None and plan and keys:  # each process sums its users' metrics; the shares add up
        sums = torch.stack([torch.stack([v[lo:hi][g.n_rel[lo:hi] > 0].sum() for v in store[g.name].values()])
                            for g in plan])
        sums = dist.accelerator.reduce(sums, reduction="sum")
    for gi, g in enumerate(plan):
        keep = g.n_rel > 0
        n_users[g.name] = int(keep.sum())
        n_group_items[g.name] = g.n_items
        if dist is None:
            result[g.name] = {k: float(v[keep].mean()) if n_users[g.name] else float("nan")
                              for k, v in store[g.name].items()}
        else:
            result[g.name] = {k: float(sums[gi, ki]) / n_users[g.name] if n_users[g.name] else float("nan")
                              for ki, k in enumerate(store[g.name])}
    info = {"seconds": round(time.perf_counter() - start, 4), "batch_size": batch_size,
            "device": str(device)}
    return EvalResult(result, n_users, n_group_items, ks=ks, target=target, info=info)


def _batches(n: int, batch_size: int, progress: bool):
    from ..support.progress import progress_bar

    starts = range(0, n, batch_size)
    return progress_bar(starts, enabled=progress, desc="evaluate", unit="batch") if progress else starts
