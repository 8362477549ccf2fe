"""HybridRecommender: the blend's limits, cold and new items, bad input, persistence, accuracy."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from hybridrec.config import TrainConfig
from hybridrec.data import generate_synthetic, make_split
from hybridrec.eval import evaluate
from hybridrec.graph import BipartiteGraph
from hybridrec.models import HybridModule, HybridRecommender, LightGCNModule, build_model, load_model
from hybridrec.models.hybrid import blend_weights
from text_fakes import FakeEncoder, block_item_embeddings
from toy import block_split

FAST = TrainConfig(epochs=15, batch_size=64, lr=0.05, l2=1e-4, progress=False)


@pytest.fixture(scope="module")
def split():
    """The toy block data with its last item ("b11") held out of training: a cold item."""
    s = block_split()
    keep = s.train.items != s.n_items - 1
    s.train = s.train.subset(keep)
    texts = [f"{'alpha' if i < 12 else 'beta'} story number {i}" for i in range(s.n_items)]
    s.train.item_table = pd.DataFrame({"title": texts, "genres": ["A"] * 12 + ["B"] * 12})
    return s


@pytest.fixture(scope="module")
def model(split):
    return HybridRecommender(dim=4, threshold=4, train=FAST).fit(split.train, encoder=FakeEncoder())


def test_blend_weights_and_the_threshold_limits():
    n = [0, 1, 50, 100, 500]
    assert blend_weights(n, 100).tolist() == pytest.approx([0, 0.01, 0.5, 1, 1])
    assert blend_weights(n, 0).tolist() == [0, 1, 1, 1, 1]  # graph only, but not for n_i = 0
    assert blend_weights(n, math.inf).tolist() == [0, 0, 0, 0, 0]  # content only
    for bad in (None, -1):
        with pytest.raises(ValueError, match="threshold"):
            HybridRecommender(threshold=bad)


def _module(split, alpha, init="svd"):
    torch.manual_seed(0)
    graph = BipartiteGraph(split.train.to_csr())
    backbone = LightGCNModule(graph, dim=4, n_layers=2)
    content = block_item_embeddings(split.n_items)
    return HybridModule(backbone, content, torch.full((split.n_items,), float(alpha)), init=init), content


def test_module_a1_is_the_graph_and_a0_is_the_projected_content(split):
    users_idx, pos, neg = torch.tensor([0, 3]), torch.tensor([1, 2]), torch.tensor([20, 21])
    m1, _ = _module(split, 1.0)
    u, g = m1.backbone()
    u1, i1 = m1()
    assert torch.equal(u1, u) and torch.equal(i1, g)
    for got, want in zip(m1.initial(users_idx, pos, neg), m1.backbone.initial(users_idx, pos, neg)):
        assert torch.equal(got, want)
    m0, content = _module(split, 0.0)
    u0, i0 = m0()
    assert torch.equal(u0, m0.backbone()[0]) and torch.equal(i0, m0.proj(content))


def test_svd_init_starts_the_item_embeddings_at_the_projected_content(split):
    m, content = _module(split, 0.5)
    with torch.no_grad():
        torch.testing.assert_close(m.backbone.item.weight, m.proj(content))
        assert float(m.proj(content).std()) == pytest.approx(0.1, rel=1e-3)
    for init in ("random", "normal"):
        _module(split, 0.5, init=init)
    with pytest.raises(ValueError, match="init must be one of"):
        _module(split, 0.5, init="pca")


@pytest.mark.parametrize("backbone", ["lightgcn", "mf"])
def test_graph_only_hybrid_is_exactly_its_backbone(backbone):
    """threshold=0 and init="normal" on data where every item has interactions: the same
    training trajectory as the plain backbone model (to the bit for LightGCN; for MF the
    gradient terms of the item table are summed in another order, so to rounding)."""
    s = block_split()
    content = block_item_embeddings(s.n_items)
    hyb = HybridRecommender(dim=4, backbone=backbone, threshold=0, init="normal", train=FAST).fit(
        s.train, item_embeddings=content)
    plain = build_model(backbone, {"dim": 4}, train=FAST).fit(s.train)
    users = torch.arange(s.n_users)
    if backbone == "lightgcn":
        assert torch.equal(hyb.score_users(users), plain.score_users(users))
    torch.testing.assert_close(hyb.score_users(users), plain.score_users(users), rtol=1e-5, atol=1e-5)


def test_content_only_hybrid_scores_users_against_projected_content(split):
    m = HybridRecommender(dim=4, threshold="inf", train=FAST).fit(split.train, encoder=FakeEncoder())
    users, items = m.embeddings()
    c = m.content_embeddings
    torch.testing.assert_close(items, c @ m._proj_weight.T)
    assert m.blend.sum() == 0 and m.settings()["threshold"] == "inf"


def test_cold_and_new_items_are_scored_from_projected_content(split, model):
    cold = split.n_items - 1
    assert model.blend[cold] == 0 and model.blend[0] == 1  # n=8 >= threshold 4
    _, items = model.embeddings()
    torch.testing.assert_close(items[cold], model.content_embeddings[cold] @ model._proj_weight.T)
    text = split.train.item_table.iloc[cold].to_dict()
    new = model.new_items([{"item_id": "fresh", **text}], encoder=FakeEncoder())
    s_new = model.score_new_items(new)[:, 0]
    s_cold = model.score_users(torch.arange(split.n_users))[:, cold].numpy()
    np.testing.assert_allclose(s_new, s_cold, rtol=1e-5, atol=1e-6)


def test_recommend_and_top_users_with_new_items(split, model):
    enc = FakeEncoder()
    new = model.new_items(pd.DataFrame({"item_id": ["n1", "n2"], "title": ["alpha story new", "beta story new"]}),
                          encoder=enc)
    ids, scores = model.recommend("u20", k=6, new_items=new)  # a block-B user
    seen = set(split.train.item_vocab.lookup(split.train.items[split.train.users == 20]))
    assert not set(ids) & seen and np.all(np.diff(scores) <= 0)
    assert "n2" in ids
    all_scores = model.score_new_items(new)
    top = model.top_users(new, k=5)
    assert list(top) == ["n1", "n2"]
    users, s = top["n2"]
    np.testing.assert_allclose(s, np.sort(all_scores[:, 1])[::-1][:5], rtol=1e-6)
    assert np.mean([int(u[1:]) >= 12 for u in users]) >= 0.8  # block-B users want the B item
    with pytest.raises(ValueError, match="rankable items"):
        model.recommend("u0", k=100, new_items=new)
    with pytest.raises(ValueError, match="choose 1 <= k"):
        model.top_users(new, k=0)


@pytest.mark.parametrize("items, message", [
    ([{"item_id": "n1", "title": ""}], r"new item\(s\) 'n1' have no text"),
    ([{"item_id": "n1", "title": "x"}, {"item_id": "n1", "title": "y"}], r"duplicate item id\(s\) 'n1'"),
    ([{"item_id": "a3", "title": "x"}, {"item_id": "b0", "title": "y"}], r"'a3', 'b0' are already in the model"),
    ([{"id": "n1", "title": "x"}], "no 'item_id' column"),
    ([{"item_id": "n1", "plot": "x"}], "none of the text fields"),
    ([{"item_id": " ", "title": "x"}], "empty 'item_id'"),
    ([], "no items given"),
])
def test_bad_new_items_are_clear_errors(model, items, message):
    with pytest.raises(ValueError, match=message):
        model.new_items(items, encoder=FakeEncoder())


def test_new_items_from_another_encoder_are_refused(model):
    with pytest.raises(ValueError, match="64-d content embeddings.*encoder used at fit time"):
        model.new_items([{"item_id": "n1", "title": "x"}], encoder=FakeEncoder(dim=8))


def test_save_load_round_trip_keeps_new_item_scoring(split, model, tmp_path):
    again = load_model(model.save(tmp_path / "hybrid"))
    users = torch.arange(split.n_users)
    assert torch.equal(again.score_users(users), model.score_users(users))
    new = model.new_items([{"item_id": "n1", "title": "alpha story"}], encoder=FakeEncoder())
    np.testing.assert_array_equal(again.score_new_items(new), model.score_new_items(new))
    assert again.threshold == 4 and torch.equal(again.blend, model.blend)
    inf = HybridRecommender(dim=4, threshold=math.inf, train=FAST).fit(split.train, encoder=FakeEncoder())
    assert math.isinf(load_model(inf.save(tmp_path / "inf")).threshold)


@pytest.mark.slow
def test_hybrid_finds_cold_items_far_above_chance():
    """Synthetic catalogue, 20% of items held out entirely; bag-of-words text."""
    data = generate_synthetic(300, 600, seed=0)
    split = make_split(data, "cold_item", cold_fraction=0.2, seed=0)
    train = TrainConfig(epochs=10, batch_size=1024, lr=0.01, l2=1e-4, progress=False)
    m = HybridRecommender(dim=32, train=train).fit(split.train, encoder=FakeEncoder(dim=256))
    res = evaluate(m, split, ks=[20], metrics=["recall"])
    gen = torch.Generator().manual_seed(0)
    rnd = evaluate(lambda u: torch.rand(len(u), split.n_items, generator=gen), split, ks=[20], metrics=["recall"])
    cold, chance = res.metrics["cold"]["recall@20"], rnd.metrics["cold"]["recall@20"]
    assert cold > 1.5 * chance, (cold, chance)
    assert res.metrics["warm"]["recall@20"] > 2 * rnd.metrics["warm"]["recall@20"]
