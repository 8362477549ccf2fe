"""Known-answer tests of the metric functions; the arithmetic is written out by hand."""

import math

import pytest
import torch

from hybridrec.eval import metrics as M

# Three users, top-4 lists:
#   u0: hits at ranks 1 and 3, |R| = 2
#   u1: hit at rank 2,          |R| = 5
#   u2: no hit,                 |R| = 1
HITS = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
N_REL = torch.tensor([2, 5, 1])
L2, L3, L4 = 1 / math.log2(2), 1 / math.log2(3), 1 / math.log2(4)  # 1, 0.6309, 0.5


def close(t, expected):
    assert t.dtype == torch.float64
    assert torch.allclose(t, torch.tensor(expected, dtype=torch.float64), atol=1e-12, equal_nan=True)


def test_recall():
    # @3: u0 2 hits / 2 = 1; u1 1 / 5 = 0.2; u2 0 / 1 = 0
    close(M.recall_at_k(HITS, N_REL, 3), [1.0, 0.2, 0.0])
    # @1: u0 1/2; u1 0/5; u2 0
    close(M.recall_at_k(HITS, N_REL, 1), [0.5, 0.0, 0.0])


def test_recall_divides_by_all_relevant_not_by_k():
    # LightGCN convention: 1 hit in the top 2 of a user with 5 relevant items is 1/5, not 1/2
    close(M.recall_at_k(torch.tensor([[True, False]]), torch.tensor([5]), 2), [0.2])


def test_precision():
    # @4: u0 2/4; u1 1/4; u2 0/4
    close(M.precision_at_k(HITS, 4), [0.5, 0.25, 0.0])
    # @2: u0 1/2; u1 1/2; u2 0
    close(M.precision_at_k(HITS, 2), [0.5, 0.5, 0.0])


def test_ndcg():
    # u0 @3: DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5; IDCG over min(3, 2) = 2 ranks
    #        = 1 + 1/log2(3) = 1.6309; NDCG = 1.5 / 1.6309 = 0.91972
    # u1 @3: DCG = 1/log2(3) = 0.6309; IDCG over min(3, 5) = 3 ranks = 1 + 0.6309 + 0.5
    #        = 2.1309; NDCG = 0.29608
    # u2: DCG 0 -> 0
    u0 = (L2 + L4) / (L2 + L3)
    u1 = L3 / (L2 + L3 + L4)
    close(M.ndcg_at_k(HITS, N_REL, 3), [u0, u1, 0.0])
    assert abs(u0 - 0.919720) < 1e-6 and abs(u1 - 0.296082) < 1e-6


def test_ndcg_perfect_list_is_one():
    hits = torch.tensor([[1, 1, 0, 0]], dtype=torch.bool)  # both relevant items on top
    close(M.ndcg_at_k(hits, torch.tensor([2]), 4), [1.0])


def test_hit_rate():
    # @1: only u0 hits at rank 1; @2: u0 and u1
    close(M.hit_rate_at_k(HITS, 1), [1.0, 0.0, 0.0])
    close(M.hit_rate_at_k(HITS, 2), [1.0, 1.0, 0.0])


def test_mrr_full_and_truncated():
    first = torch.tensor([1, 2, 7])
    # full: 1/1, 1/2, 1/7
    close(M.mrr(first), [1.0, 0.5, 1 / 7])
    # @5: rank 7 > 5 -> 0
    close(M.mrr_at_k(first, 5), [1.0, 0.5, 0.0])


def test_float_hits_same_as_bool():
    close(M.recall_at_k(HITS.float(), N_REL, 3), [1.0, 0.2, 0.0])


def test_no_relevant_items_is_nan():
    out = M.recall_at_k(torch.zeros(1, 2, dtype=torch.bool), torch.tensor([0]), 2)
    assert torch.isnan(out).all()
    assert torch.isnan(M.ndcg_at_k(torch.zeros(1, 2, dtype=torch.bool), torch.tensor([0]), 2)).all()


def test_k_beyond_list_is_an_error():
    with pytest.raises(ValueError, match="k=5"):
        M.precision_at_k(HITS, 5)


def test_compute_several_k_from_one_list():
    first = torch.tensor([1, 2, 9])
    out = M.compute(HITS, N_REL, first, (2, 4), ("recall", "ndcg", "mrr", "mrr_at_k", "hitrate"))
    assert list(out) == M.metric_keys(("recall", "ndcg", "mrr", "mrr_at_k", "hitrate"), (2, 4))
    assert list(out)[:5] == ["recall@2", "recall@4", "ndcg@2", "ndcg@4", "mrr"]
    # recall@2: u0 1/2, u1 1/5, u2 0; recall@4: u0 2/2, u1 1/5, u2 0
    close(out["recall@2"], [0.5, 0.2, 0.0])
    close(out["recall@4"], [1.0, 0.2, 0.0])
    close(out["mrr@2"], [1.0, 0.5, 0.0])
    close(out["mrr"], [1.0, 0.5, 1 / 9])


def test_unknown_metric_lists_valid_names():
    with pytest.raises(ValueError, match="recall"):
        M.check_metrics(["recal"])
