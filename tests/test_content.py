"""ContentRecommender: profile maths, recency weights, cold items, persistence, new items."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from hybridrec.data import Interactions, Vocabulary, generate_synthetic, make_split
from hybridrec.eval import evaluate
from hybridrec.models import ContentRecommender, build_model, load_model
from hybridrec.models.content import recency_weights
from hybridrec.text import TextEncoder, item_strings
from text_fakes import FakeEncoder, FakeSentenceModel

DAY = 86400


def tiny(timestamps=True) -> Interactions:
    """u0 saw i0 (day 0) and i1 (day 10); u1 saw i2; u2 nothing; i3 has no interactions."""
    return Interactions(
        users=np.array([0, 0, 1]), items=np.array([0, 1, 2]),
        user_vocab=Vocabulary(["u0", "u1", "u2"], kind="user"),
        item_vocab=Vocabulary(["i0", "i1", "i2", "i3"], kind="item"),
        timestamps=np.array([0, 10 * DAY, 5 * DAY]) if timestamps else None,
        item_table=pd.DataFrame({"title": ["Dragons", "Wizards", "Cooking", "Dragon wizards"]}),
        name="tiny",
    )


C = torch.tensor([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0], [1.0, 1.0, 0]])


def test_profile_is_the_mean_and_scores_are_cosines():
    m = ContentRecommender().fit(tiny(), item_embeddings=C)
    v = F.normalize(C, dim=1)
    torch.testing.assert_close(m.profiles[0], (v[0] + v[1]) / 2)
    s = m.score_users(torch.arange(3))
    torch.testing.assert_close(s[0], F.normalize((v[0] + v[1]) / 2, dim=0) @ v.T)
    assert s[0, 3] == pytest.approx(1.0)  # the item with no interactions is the best match
    assert torch.equal(s[2], torch.zeros(4))  # no history, no opinion


def test_dot_similarity_uses_raw_embeddings():
    m = ContentRecommender(similarity="dot").fit(tiny(), item_embeddings=C)
    torch.testing.assert_close(m.score_users(torch.tensor([0]))[0], ((C[0] + C[1]) / 2) @ C.T)


def test_recency_weights_halve_every_half_life():
    w = recency_weights(tiny(), half_life_days=10)
    np.testing.assert_allclose(w, [0.5, 1.0, 1.0])
    m = ContentRecommender(recency_half_life_days=10, similarity="dot").fit(tiny(), item_embeddings=C)
    torch.testing.assert_close(m.profiles[0], (0.5 * C[0] + C[1]) / 1.5)
    with pytest.raises(ValueError, match="needs timestamps.*'tiny'"):
        ContentRecommender(recency_half_life_days=10).fit(tiny(timestamps=False), item_embeddings=C)
    with pytest.raises(ValueError, match="must be > 0"):
        ContentRecommender(recency_half_life_days=0)


def test_fit_encodes_the_item_table(tmp_path):
    model = FakeSentenceModel()
    enc = TextEncoder(model, cache_dir=tmp_path, progress=False)
    m = ContentRecommender().fit(tiny(), encoder=enc)
    assert m.content_embeddings.shape == (4, 64) and model.calls == 1
    ContentRecommender().fit(tiny(), encoder=TextEncoder(model, cache_dir=tmp_path, progress=False))
    assert model.calls == 1  # second fit: every item text came from the cache
    assert enc.stats["texts"] == 4


def test_fit_errors_name_the_problem():
    data = tiny()
    with pytest.raises(ValueError, match=r"shape \(3, 3\).*\[4, d\]"):
        ContentRecommender().fit(data, item_embeddings=C[:3])
    bad = C.clone()
    bad[2, 0] = float("nan")
    with pytest.raises(ValueError, match="row 2 \\(item 'i2'\\)"):
        ContentRecommender().fit(data, item_embeddings=bad)
    data.item_table = None
    with pytest.raises(ValueError, match="no item text"):
        ContentRecommender().fit(data, encoder=FakeEncoder())
    with pytest.raises(ValueError, match="similarity"):
        build_model("content", {"similarity": "euclid"})


def test_save_load_round_trip(tmp_path):
    m = build_model("content", {"recency_half_life_days": 3.0}).fit(tiny(), item_embeddings=C)
    again = load_model(m.save(tmp_path / "content"))
    assert isinstance(again, ContentRecommender) and again.recency_half_life_days == 3.0
    assert torch.equal(again.score_users(torch.arange(3)), m.score_users(torch.arange(3)))
    assert torch.equal(again.content_embeddings, C)


def test_new_item_scores_like_a_catalogue_item_with_the_same_text():
    data = tiny()
    enc = FakeEncoder()
    m = ContentRecommender().fit(data, encoder=enc)
    new = m.new_items([{"item_id": "n1", "title": "Dragon wizards"}], encoder=enc)
    s = m.score_new_items(new, ["u0", "u1"])
    torch.testing.assert_close(torch.as_tensor(s[:, 0]), m.score_users(torch.tensor([0, 1]))[:, 3])
    assert m.score_new_items(new, "u0").shape == (1,)
    ids, scores = m.recommend("u0", k=3, new_items=new)
    assert set(ids) == {"n1", "i3", "i2"} and np.all(np.diff(scores) <= 0)


def test_content_beats_random_on_cold_items():
    """Bag-of-words text of the synthetic catalogue finds held-out items far above chance."""
    data = generate_synthetic(300, 600, seed=0)
    split = make_split(data, "cold_item", cold_fraction=0.2, seed=0)
    m = ContentRecommender().fit(split.train, encoder=FakeEncoder(dim=256))
    assert len(item_strings(split.train)) == 600
    res = evaluate(m, split, ks=[20], metrics=["recall"])
    gen = torch.Generator().manual_seed(0)
    rnd = evaluate(lambda u: torch.rand(len(u), split.n_items, generator=gen), split, ks=[20], metrics=["recall"])
    cold, chance = res.metrics["cold"]["recall@20"], rnd.metrics["cold"]["recall@20"]
    assert cold > 1.5 * chance, (cold, chance)
