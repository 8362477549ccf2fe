"""Evaluation: top-K metrics, the batched full-ranking evaluator, groups and reports.

Typical use::

    from hybridrec.eval import evaluate, save_results
    result = evaluate(model, split, ks=(10, 20))
    print(result.table())
    save_results(result, run_dir)
"""

from .evaluator import DEFAULT_METRICS, evaluate
from .groups import cold_item_mask, popularity_buckets
from .metrics import (
    METRICS,
    hit_rate_at_k,
    mrr,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from .report import save_results
from .result import EvalResult
from .scorers import EmbeddingScorer
from .table import format_table, render_table

__all__ = [
    "evaluate",
    "EvalResult",
    "EmbeddingScorer",
    "popularity_buckets",
    "cold_item_mask",
    "save_results",
    "format_table",
    "render_table",
    "DEFAULT_METRICS",
    "METRICS",
    "recall_at_k",
    "precision_at_k",
    "ndcg_at_k",
    "hit_rate_at_k",
    "mrr",
    "mrr_at_k",
]
