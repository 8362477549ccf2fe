"""Ranking primitives for one batch of users' scores ``[B, n_items]``.

These are the hot loops of full-ranking evaluation (about :math:`10^9` scores for
Gowalla), so each is a handful of vectorised tensor operations with no loop over users.
Masked items carry the score ``-inf`` and are never counted as ranked above anything.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

#: Width of the strided chunks of :func:`topk_indices` on CPU (measured best on Gowalla).
CHUNK = 32


def topk_indices(scores: Tensor, k: int, chunk: int = CHUNK) -> Tensor:
    """Column indices of each row's ``k`` highest scores, best first: ``long [B, k]``.

    On CPU, ``torch.topk`` over long rows is the slowest step of evaluation, so rows are
    first cut into ``n // chunk`` strided chunks ``{p, p + m, p + 2m, ...}`` (``m = n //
    chunk``); the top ``k`` of a row lie in the ``k`` chunks with the highest maxima (every
    chunk holding a top-``k`` value has a maximum at least the ``k``-th value, and at most
    ``k`` chunks can), plus the ``n mod chunk`` tail columns. The chunk maxima are an
    element-wise max over ``chunk`` contiguous slices, which vectorises well, and
    ``torch.topk`` then runs on ``k * chunk`` candidates instead of ``n``. The values
    returned equal ``torch.topk``'s; among tied scores the order may differ. On other
    devices, or short rows, this is ``torch.topk``.

    Args:
        scores: ``[B, n]`` float scores, ``n >= k``.
        k: list length.
        chunk: chunk width; ``0`` forces plain ``torch.topk``.
    """
    b, n = scores.shape
    m = n // chunk if chunk > 0 else 0
    if scores.device.type != "cpu" or m < 4 * k or not scores.is_contiguous():
        return torch.topk(scores, k, dim=1).indices
    full = m * chunk
    maxima = scores[:, :full].unflatten(1, (chunk, m)).amax(1)  # [B, m]
    best = torch.topk(maxima, k, dim=1, sorted=False).indices  # [B, k]
    offsets = torch.arange(chunk, device=scores.device) * m
    cols = (best.unsqueeze(2) + offsets).flatten(1)  # [B, k * chunk]
    if full < n:
        tail = torch.arange(full, n, device=scores.device).expand(b, -1)
        cols = torch.cat([cols, tail], dim=1)
    pick = torch.topk(scores.gather(1, cols), k, dim=1).indices
    return cols.gather(1, pick)


def count_greater(scores: Tensor, threshold: Tensor, out: Tensor | None = None) -> Tensor:
    """Number of scores strictly above each row's threshold: ``long [B]``.

    .. math:: c_u = \\left|\\{ i : s_{u,i} > t_u \\}\\right|

    Written as a float comparison summed in float (exact below :math:`2^{24}` items), which
    on CPU is several times faster than summing a bool tensor.

    Args:
        scores: ``[B, n]`` float scores.
        threshold: ``[B]`` float thresholds.
        out: optional float ``[B, n]`` work buffer, reused between batches.
    """
    if out is None or out.shape != scores.shape:
        out = torch.empty_like(scores)
    torch.gt(scores, threshold.unsqueeze(1), out=out)
    return out.sum(1).to(torch.long)


def best_target_score(scores: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Each row's highest score among its target items ``(rows, cols)``; ``-inf`` if none.

    Args:
        scores: ``[B, n]`` float scores.
        rows: ``long [nnz]`` batch-local row of each target item.
        cols: ``long [nnz]`` column of each target item.
    """
    best = torch.full((scores.shape[0],), float("-inf"), dtype=scores.dtype, device=scores.device)
    return best.scatter_reduce_(0, rows, scores[rows, cols], reduce="amax")


def is_target(keys: Tensor, rows: Tensor, top: Tensor, n_cols: int) -> Tensor:
    """Which entries of the top-K lists are targets, by binary search: ``bool [B, K]``.

    Args:
        keys: sorted ``long`` keys ``row * n_cols + col`` of all target items.
        rows: ``long [B]`` row of each list in the same numbering as ``keys``.
        top: ``long [B, K]`` columns of each list.
        n_cols: number of columns in the key encoding.
    """
    if keys.numel() == 0:
        return torch.zeros(top.shape, dtype=torch.bool, device=top.device)
    query = rows.unsqueeze(1) * n_cols + top
    pos = torch.searchsorted(keys, query).clamp_(max=keys.numel() - 1)
    return keys[pos] == query


def first_relevant_rank(hits: Tensor, n_greater: Tensor) -> Tensor:
    """1-based rank of each user's best-ranked target in the full ranking: ``long [B]``.

    The full ranking is the top-K list followed by the other items by score, so the rank is
    the position of the first hit in the list when there is one, else one more than the
    number of items scored above the best target (ties counted in the target's favour), and
    never less than ``K + 1``. This keeps ``mrr@K`` and ``hitrate@K`` consistent with the
    list under tied scores.

    Args:
        hits: ``bool [B, K]`` relevance of each rank.
        n_greater: ``long [B]`` items scored strictly above the best target.
    """
    k = hits.shape[1]
    any_hit = hits.any(1)
    first = hits.to(torch.uint8).argmax(1) + 1
    beyond = (n_greater + 1).clamp(min=k + 1)
    return torch.where(any_hit, first, beyond)
