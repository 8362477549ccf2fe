"""The candidate-ranking protocol: list construction, known-answer metrics, persistence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hybridrec.data import Interactions, Split, Vocabulary
from hybridrec.eval.candidates import (
    CandidateSet, build_candidates, candidates_table, evaluate_candidates, random_reference, target_ranks,
)


def make_split(n_users=30, n_items=60, seed=0) -> Split:
    """Each user: 10 timed training items, 2 test items (the later one is the target).

    Item ``n_items - 1`` has no training interaction: it is every 5th user's later test item,
    so those users' targets are cold.
    """
    rng = np.random.default_rng(seed)
    uv, iv = Vocabulary(range(n_users), "user"), Vocabulary(range(n_items), "item")
    tr_u, tr_i, tr_t, te_u, te_i, te_t = [], [], [], [], [], []
    for u in range(n_users):
        items = rng.choice(n_items - 1, size=12, replace=False)
        if u % 5 == 0:
            items[11] = n_items - 1
        tr_u += [u] * 10
        tr_i += list(items[:10])
        tr_t += list(range(10))
        te_u += [u, u]
        te_i += [items[11], items[10]]  # the later test item comes first in row order
        te_t += [20, 15]
    train = Interactions(np.array(tr_u), np.array(tr_i), uv, iv, timestamps=np.array(tr_t))
    test = Interactions(np.array(te_u), np.array(te_i), uv, iv, timestamps=np.array(te_t))
    return Split(train=train, test=test, kind="leave_last_out")


def test_lists_hold_the_last_target_once_and_no_item_the_user_met():
    split = make_split()
    c = build_candidates(split, n_candidates=20, seed=0)
    assert c.items.shape == (30, 20) and len(c) == 30
    seen = {(u, i) for part in (split.train, split.test) for u, i in zip(part.users, part.items)}
    later = {int(u): int(i) for u, i, t in zip(split.test.users, split.test.items, split.test.timestamps) if t == 20}
    for u, row, pos, tgt in zip(c.users.tolist(), c.items.tolist(), c.target_pos.tolist(), c.targets.tolist()):
        assert len(set(row)) == 20  # distinct
        assert row[pos] == tgt == later[u]  # the target is the last test item by time
        assert row.count(tgt) == 1
        assert not any((u, i) in seen for j, i in enumerate(row) if j != pos)
    assert c.target_pos.unique().numel() > 5  # the target's position is random
    assert c.target_cold.tolist() == [u % 5 == 0 for u in range(30)]


def test_same_seed_same_lists_other_seed_other_lists():
    split = make_split()
    a, b = build_candidates(split, seed=3), build_candidates(split, seed=3)
    assert torch.equal(a.items, b.items) and torch.equal(a.target_pos, b.target_pos)
    assert not torch.equal(a.items, build_candidates(split, seed=4).items)


def test_user_subset_is_seeded():
    split = make_split()
    a, b = build_candidates(split, n_users=7, seed=1), build_candidates(split, n_users=7, seed=1)
    assert len(a) == 7 and torch.equal(a.users, b.users) and torch.equal(a.items, b.items)
    assert a.users.tolist() == sorted(set(a.users.tolist()))


def test_negatives_from_training_items_only():
    c = build_candidates(make_split(), pool="train", seed=0)
    negatives = c.items[torch.arange(c.n_candidates)[None, :] != c.target_pos[:, None]]
    assert (negatives != 59).all()  # item 59 has no training interaction


def test_known_answer_target_ranked_third_of_twenty():
    c = CandidateSet(torch.tensor([0]), torch.arange(20)[None, :], torch.tensor([7]), torch.tensor([False]))
    scores = torch.linspace(0, 1, 20)[None, :].clone()
    scores[0, 7] = 0.9  # only items 18 (0.947) and 19 (1.0) score higher: rank 3
    assert target_ranks(scores, c.target_pos).tolist() == [3]
    r = evaluate_candidates(lambda users, items: scores, c, ks=(1, 5, 10))
    assert r.get("ndcg@10") == pytest.approx(1 / math.log2(4)) == pytest.approx(0.5)
    assert r.get("mrr") == pytest.approx(1 / 3)
    assert r.get("hitrate@1") == 0 and r.get("hitrate@5") == 1 and r.get("recall@5") == 1
    assert r.get("ndcg@5") == pytest.approx(0.5) and r.get("ndcg@1") == 0


def test_ties_are_broken_by_list_position():
    scores = torch.zeros(3, 4)
    assert target_ranks(scores, torch.tensor([0, 2, 3])).tolist() == [1, 3, 4]


class OracleModel:
    """A Recommender-like scorer (``score_users`` over the catalogue) that knows the targets."""

    def __init__(self, n_users, n_items, targets: dict):
        self.device = torch.device("cpu")
        self.s = torch.zeros(n_users, n_items)
        for u, i in targets.items():
            self.s[u, i] = 1.0

    def score_users(self, users):
        return self.s[users]


def test_oracle_scores_one_and_groups_split_warm_and_cold():
    split = make_split()
    c = build_candidates(split, seed=0)
    oracle = OracleModel(30, 60, dict(zip(c.users.tolist(), c.targets.tolist())))
    r = evaluate_candidates(oracle, c, ks=(1, 5, 10), batch_size=7)
    for g in ("all", "warm", "cold"):
        assert all(v == 1.0 for v in r[g].values()), g
    assert r.n_users == {"all": 30, "warm": 24, "cold": 6}
    assert r.info["random"]["ndcg@10"] == pytest.approx(random_reference(20)["ndcg@10"])
    assert "random" in candidates_table(r)


def test_random_reference_is_exact():
    ref = random_reference(20, ks=(1, 10))
    assert ref["ndcg@10"] == pytest.approx(sum(1 / math.log2(r + 1) for r in range(1, 11)) / 20)
    assert ref["hitrate@10"] == ref["recall@10"] == 0.5 and ref["hitrate@1"] == 0.05
    assert ref["mrr"] == pytest.approx(sum(1 / r for r in range(1, 21)) / 20)
    # a constant scorer ranks by the (random) list position: averages approach the reference
    c = build_candidates(make_split(n_users=400, n_items=500), seed=0)
    r = evaluate_candidates(lambda u, i: torch.zeros(i.shape), c, ks=(10,))
    assert abs(r.get("hitrate@10") - 0.5) < 0.08


def test_save_load_round_trip_and_mismatch(tmp_path):
    split = make_split()
    c = build_candidates(split, n_users=10, seed=2)
    c.save(tmp_path / "cands")
    c.save(tmp_path / "cands")  # replacing an older save
    back = CandidateSet.load(tmp_path / "cands", split=split)
    for name in ("users", "items", "target_pos", "target_cold"):
        assert torch.equal(getattr(back, name), getattr(c, name))
    assert back.info["seed"] == 2 and back.n_candidates == 20
    with pytest.raises(ValueError, match="another item catalogue"):
        CandidateSet.load(tmp_path / "cands", split=make_split(n_items=61))
    with pytest.raises(FileNotFoundError, match="build_candidates"):
        CandidateSet.load(tmp_path / "nothing")


def test_errors_are_clear():
    split = make_split(n_items=25)
    with pytest.raises(ValueError, match="never-seen items"):
        build_candidates(split, n_candidates=20)  # 25 items, 12 met: 13 left for 19 negatives
    c = build_candidates(make_split(), n_candidates=5)
    with pytest.raises(ValueError, match="ks must be"):
        evaluate_candidates(lambda u, i: torch.zeros(i.shape), c, ks=(10,))
    with pytest.raises(ValueError, match="NaN"):
        evaluate_candidates(lambda u, i: torch.full(i.shape, float("nan")), c, ks=(1,))
    with pytest.raises(ValueError, match="returned"):
        evaluate_candidates(lambda u, i: torch.zeros(3), c, ks=(1,))


def test_targets_seen_in_training_are_skipped():
    split = make_split()
    test = split.test
    users = np.r_[test.users, [0]]
    items = np.r_[test.items, [int(split.train.items[0])]]  # user 0 re-meets a training item, latest
    times = np.r_[test.timestamps, [99]]
    split = Split(split.train, Interactions(users, items, test.user_vocab, test.item_vocab, timestamps=times))
    c = build_candidates(split, seed=0)
    assert len(c) == 30 and c.targets[0] != split.train.items[0]


@pytest.mark.slow
def test_movielens_lists_and_popularity_beats_random(dataset_dir):
    from hybridrec.data import load_dataset, make_split as split_data
    from hybridrec.models import build_model

    data = load_dataset("ml-latest-small", path=dataset_dir("ml-latest-small"))
    split = split_data(data, "leave_last_out", n_test=1)
    c = build_candidates(split, n_candidates=20, seed=0)
    assert len(c) == 610
    train = split.train.to_csr()
    for u, row, pos in zip(c.users.tolist()[:50], c.items.tolist(), c.target_pos.tolist()):
        assert not any(train[u, i] for j, i in enumerate(row) if j != pos)
    r = evaluate_candidates(build_model("popularity").fit(split.train), c)
    assert r.get("ndcg@10") > r.info["random"]["ndcg@10"] + 0.2
