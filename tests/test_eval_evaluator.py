"""The full-ranking evaluator on toy splits with known answers, and against a reference."""

import math

import numpy as np
import pytest
import torch

from hybridrec.data import Interactions, Split, Vocabulary
from hybridrec.eval import EmbeddingScorer, evaluate, popularity_buckets


def make_split(n_users, n_items, train, test, valid=None, cold_items=None) -> Split:
    """A Split from ``{user: [items]}`` dicts over vocabularies 0..n-1."""
    uv, iv = Vocabulary(range(n_users), "user"), Vocabulary(range(n_items), "item")

    def inter(d):
        pairs = [(u, i) for u, items in d.items() for i in items]
        u, i = (np.array(x, dtype=np.int64) for x in zip(*pairs)) if pairs else ([], [])
        return Interactions(u, i, uv, iv)

    return Split(train=inter(train), test=inter(test), valid=None if valid is None else inter(valid),
                 cold_items=cold_items)


def fixed_ranking(n_items):
    """Every user scores item 0 highest, then 1, 2, ... (scores n, n-1, ..., 1)."""
    base = torch.arange(n_items, 0, -1, dtype=torch.float32)
    return lambda users: base.repeat(len(users), 1)


# 5 users x 6 items, ranking 0 > 1 > 2 > 3 > 4 > 5 for everyone.
#   u0: train {0},       test {1, 4}: masked ranking 1,2,3,4,5 -> item 1 at rank 1, item 4 at 4
#   u1: train {1, 2},    test {0}:    masked ranking 0,3,4,5   -> item 0 at rank 1
#   u2: train {0, 1},    no test:     left out of every average
#   u3: no train,        test {5}:    ranking 0..5             -> item 5 at rank 6
#   u4: train {3, 4, 5}, no test:     makes every item warm
TOY = dict(n_users=5, n_items=6, train={0: [0], 1: [1, 2], 2: [0, 1], 4: [3, 4, 5]},
           test={0: [1, 4], 1: [0], 3: [5]})


def test_toy_known_answers():
    r = evaluate(fixed_ranking(6), make_split(**TOY), ks=(2,), metrics=("recall", "precision", "ndcg", "mrr", "hitrate"))
    m = r.metrics["all"]
    assert r.n_users == {"all": 3} and list(r.metrics) == ["all"]
    # recall@2: u0 1/2 (item 1 in top 2), u1 1/1, u3 0 -> (0.5 + 1 + 0) / 3 = 0.5
    assert m["recall@2"] == pytest.approx(0.5)
    # precision@2: u0 1/2, u1 1/2, u3 0 -> 1/3
    assert m["precision@2"] == pytest.approx(1 / 3)
    # ndcg@2: u0 DCG 1, IDCG 1 + 1/log2(3) -> 0.61315; u1 1; u3 0 -> 1.61315 / 3
    assert m["ndcg@2"] == pytest.approx((1 / (1 + 1 / math.log2(3)) + 1) / 3)
    # mrr (full ranking): u0 1/1, u1 1/1, u3 1/6 -> (2 + 1/6) / 3 = 13/18
    assert m["mrr"] == pytest.approx(13 / 18)
    # hitrate@2: u0 and u1 -> 2/3
    assert m["hitrate@2"] == pytest.approx(2 / 3)


def test_train_items_are_masked():
    # Without masking u1's top 2 would be items 0, 1 (1 is a train item); with masking 0, 3.
    # Give u1 the test item 3: a hit at rank 2 only if train items 1, 2 are masked.
    split = make_split(n_users=2, n_items=6, train={0: [0], 1: [1, 2]}, test={1: [3]})
    r = evaluate(fixed_ranking(6), split, ks=(2,), metrics=("recall", "mrr"))
    assert r.n_users["all"] == 1
    assert r.metrics["all"]["recall@2"] == 1.0
    # masked ranking of u1: 0, 3, 4, 5 -> item 3 at rank 2
    assert r.metrics["all"]["mrr"] == 0.5


def test_validation_items_masked_for_test_and_valid_target():
    split = make_split(n_users=1, n_items=6, train={0: [0]}, test={0: [4]}, valid={0: [1, 2]})
    # test: train {0} and valid {1, 2} masked -> ranking 3, 4, 5 -> item 4 at rank 2
    assert evaluate(fixed_ranking(6), split, ks=(1,), metrics=("mrr",))["all"]["mrr"] == 0.5
    # valid: only train masked -> ranking 1, 2, ... -> item 1 at rank 1
    r = evaluate(fixed_ranking(6), split, ks=(1,), metrics=("mrr", "recall"), target="valid")
    assert r["all"] == {"recall@1": 0.5, "mrr": 1.0}  # recall@1: 1 of the 2 valid items
    with pytest.raises(ValueError, match="validation"):
        evaluate(fixed_ranking(6), make_split(**TOY), target="valid", ks=(1,))


def test_target_items_seen_in_training_are_dropped():
    split = make_split(n_users=2, n_items=6, train={0: [0, 1], 1: [2]}, test={0: [1], 1: [3]})
    r = evaluate(fixed_ranking(6), split, ks=(1,))
    assert r.n_users["all"] == 1  # u0's only test item is a train item


def reference(scores: np.ndarray, split: Split, ks, target="test"):
    """Per-user loop with a stable argsort: the definitions, written plainly."""
    seen = split.train.to_csr().toarray() > 0
    if target == "test" and split.valid is not None:
        seen |= split.valid.to_csr().toarray() > 0
    tgt = (split.test if target == "test" else split.valid).to_csr().toarray() > 0
    tgt &= ~seen
    rows = {f"{m}@{k}": [] for m in ("recall", "precision", "ndcg", "hitrate") for k in ks}
    rows["mrr"] = []
    for u in np.flatnonzero(tgt.any(1)):
        s = np.where(seen[u], -np.inf, scores[u])
        order = np.argsort(-s, kind="stable")
        rel = tgt[u][order]
        n_rel = rel.sum()
        for k in ks:
            h = rel[:k]
            disc = 1 / np.log2(np.arange(2, k + 2))
            rows[f"recall@{k}"].append(h.sum() / n_rel)
            rows[f"precision@{k}"].append(h.sum() / k)
            rows[f"ndcg@{k}"].append((h * disc).sum() / disc[: min(k, n_rel)].sum())
            rows[f"hitrate@{k}"].append(float(h.any()))
        rows["mrr"].append(1 / (np.argmax(rel) + 1))
    return {k: float(np.mean(v)) for k, v in rows.items()}


@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 3000  # wide enough for the chunked top-K path (K=20)
    train = {u: rng.choice(n_items, rng.integers(0, 300), replace=False).tolist() for u in range(n_users)}
    test = {u: rng.choice(n_items, rng.integers(0, 6), replace=False).tolist() for u in range(n_users)}
    valid = {u: rng.choice(n_items, 2, replace=False).tolist() for u in range(0, n_users, 3)}
    split = make_split(n_users, n_items, train, test, valid=valid)
    g = torch.Generator().manual_seed(0)
    model = EmbeddingScorer(torch.randn(n_users, 8, generator=g), torch.randn(n_items, 8, generator=g))
    return split, model


def test_matches_reference_implementation(random_case):
    split, model = random_case
    scores = model.score_users(torch.arange(split.n_users)).numpy()
    for target in ("test", "valid"):
        r = evaluate(model, split, ks=(5, 20), target=target)
        ref = reference(scores, split, (5, 20), target)
        assert r.metrics["all"] == pytest.approx(ref, abs=1e-12)


def test_batch_size_invariance(random_case):
    split, model = random_case
    results = [evaluate(model, split, ks=(5, 20), batch_size=b).to_dict()["metrics"] for b in (1, 3, 1000)]
    assert results[0] == results[1] == results[2]  # identical, not merely close


def test_plain_callable_and_view_outputs_are_not_modified():
    base = torch.arange(6, 0, -1, dtype=torch.float32)
    r = evaluate(lambda users: base.expand(len(users), -1), make_split(**TOY), ks=(2,))
    assert torch.equal(base, torch.arange(6, 0, -1, dtype=torch.float32))  # masking hit a copy
    assert r["all"]["recall@2"] == pytest.approx(0.5)


def test_wrong_score_shape_is_an_error():
    with pytest.raises(ValueError, match=r"\[4, 6\]|\[3, 6\]"):
        evaluate(lambda users: torch.zeros(len(users), 5), make_split(**TOY), ks=(2,))


def test_k_larger_than_catalogue_is_an_error():
    with pytest.raises(ValueError, match=r"k=7.*'all'.*6"):
        evaluate(fixed_ranking(6), make_split(**TOY), ks=(2, 7))
    with pytest.raises(ValueError, match=r"k=3.*'tiny'.*2"):
        evaluate(fixed_ranking(6), make_split(**TOY), ks=(3,), groups={"tiny": np.arange(6) < 2})


def test_bad_arguments():
    split = make_split(**TOY)
    with pytest.raises(ValueError, match="target"):
        evaluate(fixed_ranking(6), split, target="train", ks=(1,))
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(fixed_ranking(6), split, metrics=("auc",), ks=(1,))
    with pytest.raises(ValueError, match="ks"):
        evaluate(fixed_ranking(6), split, ks=(0,))


# Items 4 and 5 never occur in training (cold). Ranking 0 > 1 > ... > 5.
#   u0: train {0}, test {1, 4}; u1: train {1}, test {5}; u2: train {2, 3}, test {0}
COLD = dict(n_users=3, n_items=6, train={0: [0], 1: [1], 2: [2, 3]}, test={0: [1, 4], 1: [5], 2: [0]})


def test_warm_cold_groups():
    r = evaluate(fixed_ranking(6), make_split(**COLD), ks=(1,), metrics=("recall", "mrr"))
    assert list(r.metrics) == ["all", "warm", "cold"]
    assert r.n_items == {"all": 6, "warm": 4, "cold": 2}
    assert r.n_users == {"all": 3, "warm": 2, "cold": 2}  # u1 has no warm target, u2 no cold
    # all: u0 ranking 1,2,3,4,5 -> rank 1, recall@1 1/2; u1 ranking 0,2,3,4,5 -> item 5 at 5;
    #      u2 ranking 0,1,4,5 -> rank 1. recall@1 = (0.5 + 0 + 1) / 3; mrr = (1 + 1/5 + 1) / 3
    assert r["all"] == pytest.approx({"recall@1": 0.5, "mrr": 2.2 / 3})
    # warm (items 0-3): u0 ranks 1,2,3 -> item 1 at 1 (1 of 1 warm targets); u2 ranks 0,1 -> 1
    assert r["warm"] == pytest.approx({"recall@1": 1.0, "mrr": 1.0})
    # cold (items 4, 5): u0 ranks 4,5 -> item 4 at 1; u1 ranks 4,5 -> item 5 at 2
    assert r["cold"] == pytest.approx({"recall@1": 0.5, "mrr": 0.75})


def test_declared_cold_items_and_no_cold_targets():
    split = make_split(**TOY)  # every target item has training interactions...
    assert list(evaluate(fixed_ranking(6), split, ks=(1,)).metrics) == ["all"]
    split.cold_items = np.array([5, 4])  # ...unless the split declares items cold
    assert list(evaluate(fixed_ranking(6), split, ks=(1,)).metrics) == ["all", "warm", "cold"]


def test_user_groups_override_and_popularity_buckets():
    split = make_split(**COLD)
    counts = split.train.item_counts()  # [1, 1, 1, 1, 0, 0]
    buckets = popularity_buckets(counts, edges=(0, 1, 10))
    assert list(buckets) == ["0", "1-9"]  # "10+" is empty and left out
    assert buckets["0"].tolist() == [False] * 4 + [True] * 2
    r = evaluate(fixed_ranking(6), split, ks=(1,), metrics=("recall",), groups=buckets)
    assert list(r.metrics) == ["0", "1-9"]
    assert r["0"] == evaluate(fixed_ranking(6), split, ks=(1,), metrics=("recall",))["cold"]
    with pytest.raises(ValueError, match="increasing"):
        popularity_buckets(counts, edges=(1, 1))


def test_embedding_scorer():
    u, i = torch.randn(5, 3), torch.randn(7, 3)
    sc = EmbeddingScorer(u, i)
    users = torch.tensor([4, 0])
    assert torch.allclose(sc.score_users(users), u[[4, 0]] @ i.T)
    assert sc.score_users(users).shape == (2, 7) and sc.n_items == 7 and sc.device.type == "cpu"
    assert EmbeddingScorer(u.numpy().astype(np.float16), i.numpy()).user_emb.dtype == torch.float32
    with pytest.raises(ValueError, match="embeddings"):
        EmbeddingScorer(torch.randn(5, 3), torch.randn(7, 4))
