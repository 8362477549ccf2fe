"""The two-stage pipeline: candidate generation by ANN retrieval, then reranking.

Stage 1 retrieves, for each user, the top ``M`` unseen items from an embedding model's
vectors (the hybrid's by default) through an :class:`~hybridrec.eval.retrieval.ItemIndex`
(faiss exact or HNSW; exact torch search without faiss). Stage 2 reorders those ``M``
items with a reranker: the LLM ranker, a GNN, or any model that scores (user, item) pairs.
Items stage 1 missed can never come back, so the end metrics are bounded by stage 1's
recall@M, which is reported next to them.

Evaluation follows the candidate protocol's targets: each evaluated user's last held-out
item (:func:`hybridrec.eval.candidates.build_candidates` picks the users), so one-stage
candidate results and two-stage results speak of the same users and targets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import Split
from .retrieval import ItemIndex


@dataclass
class TwoStageResult:
    """Stage-1 recall and end metrics of one (retriever, reranker) pair.

    Attributes:
        stage1_recall: share of users whose target is among their ``m`` retrieved items.
        metrics: ``{"ndcg@10": ..., "hitrate@10": ..., "mrr": ...}`` of the final ranking
            (a target stage 1 missed counts as a miss at every K).
        m: items retrieved per user.
        users: users evaluated.
        seconds: ``{"retrieve": ..., "rerank": ...}``.
        cost: what the reranker reported (LLM tokens and seconds per user), if anything.
    """

    stage1_recall: float
    metrics: dict[str, float]
    m: int
    users: int
    seconds: dict[str, float] = field(default_factory=dict)
    cost: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"stage1_recall": self.stage1_recall, "metrics": self.metrics, "m": self.m, "users": self.users,
                "seconds": self.seconds, "cost": self.cost}


def retrieve(retriever, split: Split, users: torch.Tensor, m: int, index_kind: str = "exact") -> tuple[np.ndarray, float]:
    """Top-``m`` unseen items per user from ``retriever.embeddings()``: ``([U, m], seconds)``."""
    if not callable(getattr(retriever, "embeddings", None)):
        raise TypeError(f"the stage-1 retriever must be an embedding model (mf, lightgcn, ngcf, hybrid) with "
                        f"embeddings(); got {type(retriever).__name__}")
    user_emb, item_emb = retriever.embeddings()
    t = time.perf_counter()
    index = ItemIndex(item_emb, index_kind)
    u = users.cpu().numpy()
    seen = split.train.to_csr()
    cand, _ = index.search(user_emb[users.to(user_emb.device)], m, exclude=seen, rows=u)
    return cand, time.perf_counter() - t


def rerank_scores(reranker, users: torch.Tensor, cand: np.ndarray) -> tuple[torch.Tensor, dict]:
    """Scores ``[U, m]`` of the retrieved items under ``reranker`` (``None`` keeps stage 1's order)."""
    items = torch.as_tensor(cand)
    if reranker is None:
        return -torch.arange(items.shape[1], dtype=torch.float64).expand(items.shape), {}
    if hasattr(reranker, "score_candidates"):
        out = reranker.score_candidates(users, items.clamp(min=0))
        cost = out.cost() if callable(getattr(out, "cost", None)) else {}
        return torch.as_tensor(getattr(out, "scores", out)).double(), cost
    with torch.no_grad():
        device = getattr(reranker, "device", "cpu")
        s = reranker.score_users(users.to(device)).float().cpu()
    return s.gather(1, items.clamp(min=0)).double(), {}


def two_stage_evaluate(retriever, reranker, split: Split, users: torch.Tensor, targets: torch.Tensor,
                       m: int = 50, ks=(1, 5, 10), index_kind: str = "exact") -> TwoStageResult:
    """Retrieve ``m`` items per user with ``retriever``, rerank with ``reranker``, score
    the final list against each user's single target item.

    Args:
        retriever: a fitted embedding model (``embeddings() -> (users, items)``).
        reranker: a fitted model, an :class:`~hybridrec.llm.LLMRanker`, or ``None``
            (stage 1's order).
        users, targets: ``[U]`` user indices and their held-out item (e.g. a
            :class:`~hybridrec.eval.candidates.CandidateSet`'s ``users`` and ``targets``).
        m: items retrieved per user.
        ks: cut-offs of the final list, each at most ``m``.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1 or ks[-1] > m:
        raise ValueError(f"ks must lie in 1..m={m}, got {ks}")
    cand, t_retrieve = retrieve(retriever, split, users, m, index_kind)
    t = time.perf_counter()
    scores, cost = rerank_scores(reranker, users, cand)
    t_rerank = time.perf_counter() - t
    scores = scores.masked_fill(torch.as_tensor(cand) < 0, -math.inf)  # padding never ranks
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    ranked = np.take_along_axis(cand, order.numpy(), axis=1)
    hit = ranked == targets.cpu().numpy()[:, None]
    found = hit.any(1)
    rank = np.where(found, hit.argmax(1) + 1, 0)  # 1-based; 0 = not retrieved
    metrics = {}
    for k in ks:
        within = found & (rank <= k)
        metrics[f"ndcg@{k}"] = float(np.where(within, 1 / np.log2(np.maximum(rank, 1) + 1), 0).mean())
        metrics[f"hitrate@{k}"] = float(within.mean())
    metrics["mrr"] = float(np.where(found, 1 / np.maximum(rank, 1), 0).mean())
    return TwoStageResult(stage1_recall=float(found.mean()), metrics=metrics, m=m, users=len(users),
                          seconds={"retrieve": t_retrieve, "rerank": t_rerank}, cost=cost)
