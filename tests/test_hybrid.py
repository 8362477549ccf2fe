"""HybridRecommender: the blend's limits, the calibration chosen on validation, folding in
new interactions, cold and new items, bad input, persistence, accuracy."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from hybridrec.config import TrainConfig
from hybridrec.data import DataError, Interactions, Split, generate_synthetic, make_split
from hybridrec.eval import evaluate
from hybridrec.models import HybridRecommender, build_model, load_model
from hybridrec.models.hybrid import (COLD_LAST, GRAPH_WEIGHTS, OFFSETS, SE_RULE, Blend, HybridParts, blend_weights,
                                     combined_embeddings, user_stats)
from text_fakes import FakeEncoder
from toy import block_split

FAST = TrainConfig(epochs=15, batch_size=64, lr=0.05, l2=1e-4, progress=False)
SHORT_LISTS = TrainConfig(**{**FAST.__dict__, "valid_metric": "recall@3"})  # 24 items: top-20 would hold all
TEXTBOOK = {"threshold": 4, "graph_weight": 1, "projection_weight": 0, "calibrate": False}


def _with_text(s: Split) -> Split:
    tag = ["".join(chr(97 + (5 * i + 3 * j) % 26) for j in range(4)) for i in range(s.n_items)]  # a word per item
    texts = [f"{'alpha' if i < s.n_items // 2 else 'beta'} story {tag[i]}" for i in range(s.n_items)]
    s.train.item_table = pd.DataFrame({"title": texts, "genres": ["A"] * (s.n_items // 2) + ["B"] * (s.n_items // 2)})
    return s


@pytest.fixture(scope="module")
def split():
    """The toy block data with its last item ("b11") held out of training: a cold item."""
    s = block_split()
    s.train = s.train.subset(s.train.items != s.n_items - 1)
    return _with_text(s)


@pytest.fixture(scope="module")
def model(split):
    return HybridRecommender(dim=4, train=FAST, **TEXTBOOK).fit(split.train, encoder=FakeEncoder())


def test_blend_weights_and_the_settings():
    n = [0, 1, 50, 100, 500]
    assert blend_weights(n, 100).tolist() == pytest.approx([0, 0.01, 0.5, 1, 1])
    assert blend_weights(n, 0).tolist() == [0, 1, 1, 1, 1]  # graph only, but not for n_i = 0
    assert blend_weights(n, math.inf).tolist() == [0, 0, 0, 0, 0]  # text only
    for bad in (None, -1, "lots"):
        with pytest.raises(ValueError, match="threshold"):
            HybridRecommender(threshold=bad)
    with pytest.raises(ValueError, match="graph_weight.*in \\[0, 1\\]"):
        HybridRecommender(graph_weight=1.5)
    with pytest.raises(ValueError, match="calibrate"):
        HybridRecommender(calibrate="yes")
    auto = HybridRecommender()
    assert (auto.threshold, auto.graph_weight, auto.projection_weight) == ("auto", "auto", "auto")


def test_user_stats_are_the_mean_and_std_of_each_users_scores():
    gen = torch.Generator().manual_seed(0)
    users, items = torch.randn(5, 3, generator=gen), torch.randn(40, 3, generator=gen)
    mu, sd = user_stats(users, items)
    scores = users @ items.T
    torch.testing.assert_close(mu, scores.mean(1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sd, scores.std(1, unbiased=False), rtol=1e-5, atol=1e-5)


def _parts(n_users=6, n_items=10, seed=0) -> HybridParts:
    gen = torch.Generator().manual_seed(seed)
    counts = torch.tensor([0, 0, 1, 2, 3, 5, 8, 20, 50, 200], dtype=torch.float32)[:n_items]
    item_graph = torch.randn(n_items, 4, generator=gen) * (counts > 0)[:, None]
    text = torch.nn.functional.normalize(torch.randn(n_items, 5, generator=gen), dim=1)
    return HybridParts(torch.randn(n_users, 4, generator=gen), item_graph, torch.zeros(n_users, 4),
                       torch.zeros(n_items, 4), torch.randn(n_users, 5, generator=gen), text,
                       torch.randn(n_items, 4, generator=gen), counts)


def test_combined_embeddings_score_the_documented_blend():
    """s = lam (a g + (1 - a) t) + (1 - lam) (gamma f + b), f = (1 - w) t + w p, all z-scored."""
    parts = _parts()
    blend = Blend(threshold=10.0, graph_weight=0.7, projection_weight=0.3, scale=1.5, offset=-0.5)
    users, items = combined_embeddings(parts, blend)
    g, t, p = parts.features(torch.arange(6))
    lam = blend_weights(parts.counts.numpy(), 10.0)
    f = 0.7 * t + 0.3 * p
    want = lam * (0.7 * g + 0.3 * t) + (1 - lam) * (1.5 * f - 0.5)
    torch.testing.assert_close(users @ items.T, want, rtol=1e-4, atol=1e-4)
    # each feature is standardised over its items: mean 0, std 1 for every user
    warm = parts.counts > 0
    torch.testing.assert_close(g[:, warm].mean(1), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(t.std(1, unbiased=False), torch.ones(6), atol=1e-4, rtol=0)


def test_graph_only_setting_ranks_exactly_as_lightgcn():
    """threshold=0, graph_weight=1: the graph part is LightGCN trained the same way, and the
    hybrid's score is each user's LightGCN score standardised (same ranking)."""
    s = _with_text(block_split())
    hyb = HybridRecommender(dim=4, threshold=0, graph_weight=1, train=FAST).fit(s.train, encoder=FakeEncoder())
    plain = build_model("lightgcn", {"dim": 4}, train=FAST).fit(s.train)
    users = torch.arange(s.n_users)
    h, p = hyb.score_users(users), plain.score_users(users)
    mu, sd = user_stats(*plain.embeddings())
    torch.testing.assert_close(h, (p - mu[:, None]) / sd[:, None], rtol=1e-4, atol=1e-4)
    assert torch.equal(torch.topk(h, 5).indices, torch.topk(p, 5).indices)


def test_text_only_setting_ranks_exactly_as_the_content_model(split):
    hyb = HybridRecommender(dim=4, threshold="inf", projection_weight=0, calibrate=False,
                            train=FAST).fit(split.train, encoder=FakeEncoder())
    content = build_model("content", {}).fit(split.train, encoder=FakeEncoder())
    users = torch.arange(split.n_users)
    h, c = hyb.score_users(users).double(), content.score_users(users).double()
    for u in range(split.n_users):  # an increasing affine map of the cosine, per user
        slope, icept = np.polyfit(c[u].numpy(), h[u].numpy(), 1)
        assert slope > 0
        np.testing.assert_allclose(h[u].numpy(), slope * c[u].numpy() + icept, atol=1e-4)
    assert hyb.blend.sum() == 0 and hyb.settings()["threshold"] == "inf"


def _calibration_split(where: str) -> Split:
    """Block data whose validation positives are all on cold items (``where="cold"``: the
    held-out items b9..b11 / a9..a11 of each user's block) or, but for one user in six, on
    warm items."""
    s = block_split()
    n = s.n_items // 2
    cold = np.array([9, 10, 11, n + 9, n + 10, n + 11])
    keep = ~np.isin(s.train.items, cold)
    train = s.train.subset(keep)
    users = np.arange(s.n_users)
    v_items = np.where(users < n, 9, n + 9)
    if where == "warm":  # a warm item of the user's block that the user has not met in training
        warm = np.array([next(i for i in range(b, b + 9) if i not in set(train.items[train.users == u]))
                         for u, b in zip(users, np.where(users < n, 0, n))])
        v_items = np.where(users % 6 == 0, v_items, warm)
    valid = Interactions(users, v_items, s.train.user_vocab, s.train.item_vocab, name="blocks")
    return _with_text(Split(train=train, test=s.test, valid=valid, kind="given"))


def test_calibration_puts_cold_items_where_validation_finds_the_positives():
    """Known answer: when every validation positive is a cold item, the chosen scale and
    offset put cold items at the top of the users' lists; when five users in six have a
    warm one, the offset is lower and those users' lists start with warm items."""
    fitted = {}
    for where in ("cold", "warm"):
        s = _calibration_split(where)
        m = HybridRecommender(dim=4, train=SHORT_LISTS, threshold=0, graph_weight=1, projection_weight=0,
                              calibration_users=100).fit(s.train, s.valid, encoder=FakeEncoder())
        scores = m.score_users(torch.arange(s.n_users))
        scores[torch.as_tensor(s.train.users), torch.as_tensor(s.train.items)] = -torch.inf
        top = torch.topk(scores, 3).indices
        fitted[where] = (m, torch.as_tensor(s.train.item_counts() == 0)[top])
        calib = [r for r in m.selection if r["stage"] == "calibration"]
        assert len(calib) == 1 + len(OFFSETS) * 6 and calib[0]["offset"] == COLD_LAST
        chosen = next(r for r in calib if r["chosen"])
        assert (m.chosen.scale, m.chosen.offset) == (chosen["scale"], chosen["offset"])
    (m_cold, top_cold), (m_warm, top_warm) = fitted["cold"], fitted["warm"]
    assert float(top_cold.float().mean()) >= 0.9
    assert m_warm.chosen.offset < m_cold.chosen.offset
    assert float(top_warm[torch.arange(len(top_warm)) % 6 != 0].float().mean()) <= 0.1


def test_automatic_choice_is_the_best_grid_point_and_starts_from_the_parts():
    s = _calibration_split("cold")
    m = HybridRecommender(dim=4, train=SHORT_LISTS, calibration_users=100).fit(s.train, s.valid, encoder=FakeEncoder())
    stages = {r["stage"] for r in m.selection}
    assert stages == {"text", "graph_weight", "calibration", "threshold"}
    gw = [r for r in m.selection if r["stage"] == "graph_weight"]
    assert [r["graph_weight"] for r in gw] == list(GRAPH_WEIGHTS)  # 1.0 (graph only) first, 0.0 (text only) last
    for stage, name in (("graph_weight", "graph_weight"), ("threshold", "threshold"), ("text", "projection_weight")):
        rows = [r for r in m.selection if r["stage"] == stage and r.get("kept_warm", True)]
        assert rows[0]["both_halves"]  # the pure part always counts
        best = next(r for r in rows if r["best"])
        assert best["recall"] == max(r["recall"] for r in rows if r["both_halves"])
        # the first grid point that wins on both halves of the items and is within SE_RULE
        # standard errors of the best
        first = next(r for r in rows
                     if r["both_halves"] and best["recall"] - r["recall"] <= SE_RULE * r["se_to_best"])
        assert first["chosen"] and sum(r["chosen"] for r in rows) == 1
        assert getattr(m.chosen, name) == first[name]


def test_without_validation_the_textbook_blend_is_used(split, caplog):
    m = HybridRecommender(dim=4, train=FAST).fit(split.train, encoder=FakeEncoder())
    assert m.chosen == Blend()  # tau = 100, a = 1, no projection, no calibration
    assert "no validation data" in caplog.text


def test_fold_in_moves_a_new_items_score_from_its_text_to_its_graph_neighbours(split, model):
    """A new item whose text says block A ("alpha") but whose interactions come from block-B
    users: before any interaction block-A users score it higher; as B users interact, its
    blend weight grows and its graph embedding (propagated from its B neighbours) takes over."""
    m = HybridRecommender(dim=4, train=FAST, **TEXTBOOK).fit(split.train, encoder=FakeEncoder())
    new = [{"item_id": "n1", "title": "alpha story new", "genres": "A"}]
    a_users, b_users = [f"u{i}" for i in range(12)], [f"u{i}" for i in range(12, 24)]

    def gap():  # mean score of block-B users (not among the item's interactions) minus block-A users
        s_a = m.score(a_users, ["n1"])[:, 0].mean()
        s_b = m.score(b_users[6:], ["n1"])[:, 0].mean()
        return s_b - s_a

    out = m.update(pd.DataFrame({"user_id": ["u12"], "item_id": ["n1"]}), items=new, encoder=FakeEncoder())
    assert out == {"interactions": 1, "new_users": 0, "new_items": 1, "items_touched": 1}
    n1 = m.item_vocab.index("n1")
    gaps, weights = [gap()], [float(m.blend[n1])]
    assert weights[0] == pytest.approx(0.25)
    for users in (["u13"], ["u14", "u15"]):  # 2, then 4 interactions (the threshold)
        m.update([{"user_id": u, "item_id": "n1"} for u in users])
        gaps.append(gap())
        weights.append(float(m.blend[n1]))
    assert weights == pytest.approx([0.25, 0.5, 1.0])
    assert gaps[0] < gaps[1] < gaps[2] and gaps[2] > 0, gaps  # B users now prefer it
    text_only = m.score_new_items(m.new_items([{**new[0], "item_id": "n2"}], encoder=FakeEncoder()))
    assert text_only[:12].mean() > text_only[12:].mean()  # the same text with no interactions: block A


def test_update_adds_users_counts_and_survives_a_round_trip(split, tmp_path):
    m = HybridRecommender(dim=4, train=FAST, **TEXTBOOK).fit(split.train, encoder=FakeEncoder())
    before = m.parts.counts.clone()
    out = m.update(pd.DataFrame({"user_id": ["new_user", "new_user", "u0"], "item_id": ["b11", "b10", "b11"]}))
    assert out["new_users"] == 1 and out["interactions"] == 3
    b11, b10 = m.item_vocab.index("b11"), m.item_vocab.index("b10")
    assert m.parts.counts[b11] == before[b11] + 2 and m.parts.counts[b10] == before[b10] + 1
    ids, _ = m.recommend("new_user", k=5)
    assert not {"b11", "b10"} & set(ids)  # seen items stay excluded
    assert np.mean([i.startswith("b") for i in ids]) >= 0.6  # a B-leaning newcomer
    again = load_model(m.save(tmp_path / "updated"))
    users = torch.arange(len(m.user_vocab))
    torch.testing.assert_close(again.score_users(users), m.score_users(users))
    again.update([{"user_id": "new_user", "item_id": "b9"}])  # a loaded model folds in too
    assert again.parts.counts[again.item_vocab.index("b9")] == m.parts.counts[m.item_vocab.index("b9")] + 1


@pytest.mark.parametrize("rows, items, message", [
    ([{"user_id": "u0", "item_id": "zz"}], None, r"unknown item\(s\) with no text.*'zz'"),
    ([{"user": "u0", "item_id": "a1"}], None, "need a 'user_id' column"),
    ([{"user_id": "", "item_id": "a1"}], None, "row 0: empty 'user_id'"),
    ([{"user_id": "u0", "item_id": "a1"}], [{"item_id": "a1", "title": "x"}], "already in the model"),
    ([{"user_id": "u0", "item_id": "n1"}, {"user_id": "u0", "item_id": "zz"}], [{"item_id": "n1", "title": "x"}],
     r"unknown item\(s\) with no text.*'zz'"),  # n1's text is fine, but nothing is kept
])
def test_bad_updates_are_clear_errors_and_change_nothing(split, rows, items, message):
    m = HybridRecommender(dim=4, train=FAST, **TEXTBOOK).fit(split.train, encoder=FakeEncoder())
    users = torch.arange(split.n_users)
    before, n_items = m.score_users(users).clone(), m.n_items
    with pytest.raises((DataError, ValueError), match=message):
        m.update(rows, items=items, encoder=FakeEncoder())
    assert m.n_items == n_items and m.content_embeddings.shape[0] == n_items
    assert torch.equal(m.score_users(users), before) and "n1" not in m.item_vocab


def test_cold_and_new_items_are_scored_from_their_text(split, model):
    cold = split.n_items - 1
    assert model.blend[cold] == 0 and model.blend[0] == 1  # n=8 >= threshold 4
    text = split.train.item_table.iloc[cold].to_dict()
    new = model.new_items([{"item_id": "fresh", **text}], encoder=FakeEncoder())
    s_new = model.score_new_items(new)[:, 0]
    s_cold = model.score_users(torch.arange(split.n_users))[:, cold].numpy()
    np.testing.assert_allclose(s_new, s_cold, rtol=1e-5, atol=1e-5)


def test_recommend_and_top_users_with_new_items(split, model):
    enc = FakeEncoder()
    new = model.new_items(pd.DataFrame({"item_id": ["n1", "n2"], "title": ["alpha story new", "beta story new"]}),
                          encoder=enc)
    ids, scores = model.recommend("u20", k=6, new_items=new)  # a block-B user
    seen = set(split.train.item_vocab.lookup(split.train.items[split.train.users == 20]))
    assert not set(ids) & seen and np.all(np.diff(scores) <= 0)
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


def test_save_load_round_trip_keeps_scores_blend_and_new_item_scoring(split, model, tmp_path):
    again = load_model(model.save(tmp_path / "hybrid"))
    users = torch.arange(split.n_users)
    assert torch.equal(again.score_users(users), model.score_users(users))
    new = model.new_items([{"item_id": "n1", "title": "alpha story"}], encoder=FakeEncoder())
    np.testing.assert_array_equal(again.score_new_items(new), model.score_new_items(new))
    assert again.threshold == 4 and again.chosen == model.chosen and torch.equal(again.blend, model.blend)
    inf = HybridRecommender(dim=4, threshold=math.inf, train=FAST).fit(split.train, encoder=FakeEncoder())
    assert math.isinf(load_model(inf.save(tmp_path / "inf")).chosen.threshold)


@pytest.mark.slow
def test_hybrid_is_at_least_as_good_as_its_parts_on_a_cold_item_split():
    """Synthetic catalogue, 20% of items held out for test and 10% for validation;
    bag-of-words text. The hybrid beats both parts over the whole catalogue and keeps
    (within noise) the better part's accuracy on warm and on cold items."""
    data = generate_synthetic(600, 600, seed=0)
    split = make_split(data, "cold_item", seed=0, valid_fraction=0.1, valid_cold_fraction=0.1)
    train = TrainConfig(epochs=60, batch_size=1024, lr=0.02, l2=1e-4, patience=8, progress=False)
    enc = FakeEncoder(dim=256)
    res = {}
    for name in ("content", "lightgcn", "hybrid"):
        m = build_model(name, {} if name == "content" else {"dim": 32}, train=train, seed=0)
        m.fit(split.train, split.valid, **({"encoder": enc} if m.content_aware else {}))
        r = evaluate(m, split, ks=[20], metrics=["recall"]).metrics
        res[name] = {g: r[g]["recall@20"] for g in ("all", "warm", "cold")}
    h, c, g = res["hybrid"], res["content"], res["lightgcn"]
    assert h["all"] > max(c["all"], g["all"]), res
    assert h["warm"] >= 0.95 * g["warm"] and h["cold"] >= 0.95 * c["cold"], res


def test_top_k_merge_equals_ranking_the_whole_catalogue():
    """The calibration's shortcut (merge each group's top-k) gives the full ranking's recall."""
    from hybridrec.models.hybrid import _TopMerge, _blended, _recall

    gen = torch.Generator().manual_seed(0)
    warm_s, cold_s = torch.randn(30, 50, generator=gen), torch.randn(30, 50, generator=gen)
    pos, seen = torch.rand(30, 50, generator=gen) < 0.1, torch.rand(30, 50, generator=gen) < 0.2
    seen &= ~pos
    cold = torch.arange(50) >= 35
    merge = _TopMerge(warm_s, cold_s, [pos, pos & (torch.arange(50) % 2 == 0)], seen, cold, 5)
    lam = (~cold).float()
    for gamma, b in [(1.0, 0.0), (0.5, 1.25), (2.0, -0.75), (3.0, 4.0)]:
        full = _recall(_blended(warm_s, cold_s, lam, gamma, b), [pos, pos & (torch.arange(50) % 2 == 0)], seen,
                       torch.ones(50, dtype=torch.bool), 5)
        for got, want in zip(merge.recall(gamma, b), full):
            torch.testing.assert_close(got, want)


def test_text_can_enter_the_propagation_as_the_items_initial_features(split):
    """init="svd": LightGCN's layer-0 item embeddings start at the projected text (top
    singular directions, scaled to init_std), so text flows through the propagation."""
    m = HybridRecommender(dim=4, init="svd", train=FAST)
    m._content = torch.as_tensor(FakeEncoder().encode(["alpha x"] * 12 + ["beta y"] * 12))
    module = m.build_module(split.train)
    w = module.item.weight.detach()
    assert float(w.std()) == pytest.approx(0.1, rel=1e-3)
    assert torch.allclose(w[0], w[5]) and not torch.allclose(w[0], w[20])  # same text, same start
    with pytest.raises(ValueError, match="init must be one of"):
        HybridRecommender(init="pca")
