"""Two-stage pipeline: stage-1 recall bounds the end metrics; the reranker reorders only."""

import numpy as np
import pytest
import torch

from hybridrec.data import Interactions, Split, Vocabulary
from hybridrec.eval.twostage import two_stage_evaluate


class Stub:
    """Users and items on a line: user u prefers items near u; item 0 is every user's training item."""

    device = "cpu"

    def __init__(self, n_users=6, n_items=30):
        self.u = torch.stack([torch.ones(n_users), torch.arange(n_users).float()], 1)
        self.i = torch.stack([-(torch.arange(n_items).float() ** 2) / 2, torch.arange(n_items).float()], 1)

    def embeddings(self):
        return self.u, self.i

    def score_users(self, users):
        return self.u[users] @ self.i.T


class Oracle:
    """Scores each user's target item highest."""

    device = "cpu"

    def __init__(self, targets, n_items):
        self.t, self.n = targets, n_items

    def score_users(self, users):
        s = torch.zeros(len(users), self.n)
        s[torch.arange(len(users)), self.t[users]] = 1.0
        return s


def split_for(n_users=6, n_items=30):
    users = Vocabulary([f"u{j}" for j in range(n_users)], kind="user")
    items = Vocabulary([f"i{j}" for j in range(n_items)], kind="item")
    train = Interactions(np.arange(n_users), np.zeros(n_users, dtype=np.int64), users, items)
    test = Interactions(np.arange(n_users), np.full(n_users, 5), users, items)
    return Split(train=train, test=test, kind="given")


def test_stage1_recall_bounds_and_oracle_reranker_is_perfect_on_retrieved():
    split, stub = split_for(), Stub()
    users = torch.arange(6)
    targets = torch.full((6,), 5)
    # user u's top 3 unseen items are those nearest u (item 0 is seen): item 5 only for users 4
    # (ranked 2nd: 4, 5, 3) and 5 (ranked 1st: 5, 6, 4)
    plain = two_stage_evaluate(stub, None, split, users, targets, m=3, ks=[1, 3])
    assert plain.stage1_recall == pytest.approx(2 / 6)
    assert plain.metrics["hitrate@1"] == pytest.approx(1 / 6)
    assert plain.metrics["hitrate@3"] == pytest.approx(2 / 6)
    assert plain.metrics["mrr"] == pytest.approx((1 / 2 + 1) / 6)
    oracle = two_stage_evaluate(stub, Oracle(targets, 30), split, users, targets, m=3, ks=[1, 3])
    assert oracle.stage1_recall == plain.stage1_recall  # reranking cannot add items
    assert oracle.metrics["hitrate@1"] == pytest.approx(2 / 6)
    assert oracle.metrics["ndcg@1"] == pytest.approx(2 / 6)


def test_ks_beyond_m_is_an_error():
    with pytest.raises(ValueError, match="ks must lie"):
        two_stage_evaluate(Stub(), None, split_for(), torch.arange(6), torch.full((6,), 5), m=5, ks=[10])
