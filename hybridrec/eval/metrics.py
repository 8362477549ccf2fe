"""Top-K ranking metrics: small pure functions on torch tensors, vectorised over users.

Every function takes the per-rank relevance of one top-K list per user,

* ``hits``: ``[B, K']`` bool or float, ``hits[u, r-1]`` is 1 when the item at rank ``r``
  (1-based) of user ``u``'s list is relevant, with ``K' >= k``;
* ``n_relevant``: ``[B]``, the number of relevant (target) items :math:`|R_u|` of each user;
* ``first_rank``: ``[B]``, the 1-based rank of the best-ranked relevant item in the *full*
  ranking of the catalogue,

and returns one value per user, ``float64 [B]``. Users with :math:`|R_u| = 0` are undefined
for recall and NDCG (``nan``); the evaluator leaves them out of every average. Several K are
read from one top-:math:`\\max K` list by slicing the first ``k`` columns, so a list is
ranked once per user whatever the number of cut-offs.

Conventions follow the LightGCN paper (Recall divides by :math:`|R_u|`, not by
:math:`\\min(K, |R_u|)`; binary-gain NDCG). ``mrr`` is the full-ranking reciprocal rank,
``mrr_at_k`` the truncated one (0 past rank K).
"""

from __future__ import annotations

from typing import Callable

import torch

Tensor = torch.Tensor


def _top(hits: Tensor, k: int) -> Tensor:
    if k < 1 or k > hits.shape[1]:
        raise ValueError(f"k={k} but the top-K lists hold {hits.shape[1]} ranks")
    return hits[:, :k].to(torch.float64)


def _discounts(k: int, device) -> Tensor:
    """:math:`1 / \\log_2(r + 1)` for ranks :math:`r = 1..k`, ``float64 [k]``."""
    return 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=device))


def recall_at_k(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """Recall@K: the share of a user's relevant items found in the top K.

    .. math:: \\mathrm{Recall@K}(u) = \\frac{\\sum_{r=1}^{K} \\mathrm{hit}_{u,r}}{|R_u|}

    Args:
        hits: ``[B, K']`` relevance of each rank, ``K' >= k``.
        n_relevant: ``[B]`` number of relevant items :math:`|R_u|`.
        k: cut-off.

    Returns:
        ``float64 [B]``; ``nan`` where :math:`|R_u| = 0`.
    """
    return _top(hits, k).sum(1) / n_relevant.to(torch.float64)


def precision_at_k(hits: Tensor, k: int) -> Tensor:
    """Precision@K: the share of the top K that is relevant.

    .. math:: \\mathrm{Precision@K}(u) = \\frac{1}{K} \\sum_{r=1}^{K} \\mathrm{hit}_{u,r}

    Args:
        hits: ``[B, K']`` relevance of each rank, ``K' >= k``.
        k: cut-off.

    Returns:
        ``float64 [B]``.
    """
    return _top(hits, k).sum(1) / k


def ndcg_at_k(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """NDCG@K with binary gains.

    .. math::
        \\mathrm{DCG@K}(u) = \\sum_{r=1}^{K} \\frac{\\mathrm{hit}_{u,r}}{\\log_2(r + 1)}, \\quad
        \\mathrm{IDCG@K}(u) = \\sum_{r=1}^{\\min(K, |R_u|)} \\frac{1}{\\log_2(r + 1)}, \\quad
        \\mathrm{NDCG@K}(u) = \\frac{\\mathrm{DCG@K}(u)}{\\mathrm{IDCG@K}(u)}

    Args:
        hits: ``[B, K']`` relevance of each rank, ``K' >= k``.
        n_relevant: ``[B]`` number of relevant items :math:`|R_u|`.
        k: cut-off.

    Returns:
        ``float64 [B]`` in ``[0, 1]``; ``nan`` where :math:`|R_u| = 0`.
    """
    disc = _discounts(k, hits.device)
    dcg = (_top(hits, k) * disc).sum(1)
    ideal = torch.cat([disc.new_zeros(1), disc.cumsum(0)])  # ideal[m] = IDCG of m hits
    m = n_relevant.to(torch.long).clamp(0, k)
    idcg = ideal[m]
    return dcg / torch.where(m > 0, idcg, torch.full_like(idcg, float("nan")))


def hit_rate_at_k(hits: Tensor, k: int) -> Tensor:
    """HitRate@K: 1 when at least one relevant item is in the top K.

    .. math:: \\mathrm{HR@K}(u) = \\mathbb{1}\\left[\\sum_{r=1}^{K} \\mathrm{hit}_{u,r} > 0\\right]

    Args:
        hits: ``[B, K']`` relevance of each rank, ``K' >= k``.
        k: cut-off.

    Returns:
        ``float64 [B]`` of 0 and 1.
    """
    return (_top(hits, k).sum(1) > 0).to(torch.float64)


def mrr(first_rank: Tensor) -> Tensor:
    """Reciprocal rank of the first relevant item in the full ranking (no cut-off).

    .. math:: \\mathrm{MRR}(u) = \\frac{1}{\\mathrm{rank}_u}, \\quad
        \\mathrm{rank}_u = \\min_{i \\in R_u} \\mathrm{rank}(i)

    Args:
        first_rank: ``[B]`` 1-based rank of the best-ranked relevant item among all items.

    Returns:
        ``float64 [B]`` in ``(0, 1]``.
    """
    return 1.0 / first_rank.to(torch.float64)


def mrr_at_k(first_rank: Tensor, k: int) -> Tensor:
    """Truncated reciprocal rank: 0 when the first relevant item ranks below K.

    .. math:: \\mathrm{MRR@K}(u) = \\frac{\\mathbb{1}[\\mathrm{rank}_u \\le K]}{\\mathrm{rank}_u}

    Args:
        first_rank: ``[B]`` 1-based rank of the best-ranked relevant item among all items.
        k: cut-off.

    Returns:
        ``float64 [B]`` in ``[0, 1]``.
    """
    r = first_rank.to(torch.float64)
    return torch.where(r <= k, 1.0 / r, torch.zeros_like(r))


#: Metric names the evaluator accepts. ``True``: one value per K (reported as ``name@K``);
#: ``False``: one value per user (reported as ``name``). ``mrr_at_k`` is reported as
#: ``mrr@K`` and ``mrr`` (full ranking) as ``mrr``.
METRICS: dict[str, bool] = {
    "recall": True,
    "precision": True,
    "ndcg": True,
    "hitrate": True,
    "mrr": False,
    "mrr_at_k": True,
}


def check_metrics(names) -> tuple[str, ...]:
    """Validate metric names; raise ``ValueError`` listing the valid ones."""
    names = (names,) if isinstance(names, str) else tuple(names)
    bad = [n for n in names if n not in METRICS]
    if bad or not names:
        raise ValueError(f"unknown metric(s) {bad}; choose from {sorted(METRICS)}")
    return names


def metric_keys(names, ks) -> list[str]:
    """Report keys in order: for each metric, ``name@k`` for every k, or ``name``."""
    keys = []
    for n in check_metrics(names):
        if not METRICS[n]:
            keys.append(n)
        else:
            prefix = "mrr" if n == "mrr_at_k" else n
            keys += [f"{prefix}@{k}" for k in ks]
    return keys


def compute(hits: Tensor, n_relevant: Tensor, first_rank: Tensor, ks, names) -> dict[str, Tensor]:
    """All requested metrics at all cut-offs from one top-:math:`\\max K` list.

    Args:
        hits: ``[B, max(ks)]`` relevance of each rank.
        n_relevant: ``[B]`` number of relevant items per user.
        first_rank: ``[B]`` full-ranking rank of each user's first relevant item.
        ks: cut-offs.
        names: metric names from :data:`METRICS`.

    Returns:
        ``{key: float64 [B]}`` with keys as :func:`metric_keys` lists them.
    """
    per_k: dict[str, Callable[[int], Tensor]] = {
        "recall": lambda k: recall_at_k(hits, n_relevant, k),
        "precision": lambda k: precision_at_k(hits, k),
        "ndcg": lambda k: ndcg_at_k(hits, n_relevant, k),
        "hitrate": lambda k: hit_rate_at_k(hits, k),
        "mrr_at_k": lambda k: mrr_at_k(first_rank, k),
    }
    out: dict[str, Tensor] = {}
    for n in check_metrics(names):
        if n == "mrr":
            out["mrr"] = mrr(first_rank)
        else:
            prefix = "mrr" if n == "mrr_at_k" else n
            for k in ks:
                out[f"{prefix}@{k}"] = per_k[n](k)
    return out
