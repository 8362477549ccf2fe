"""Contract tests run against every registered model, chosen by its capability flags.

Full-ranking models are fitted on the toy block data set (content-aware ones on toy content
embeddings, since the toy data has no text); candidate-only models (the LLM ranker) run
with a tiny random-weight causal LM on the same data with item titles. A model added to the
registry is picked up here without any change to this file.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from hybridrec.config import TrainConfig
from hybridrec.data import UnknownIdError
from hybridrec.models import MODELS, build_model, load_model, model_settings, models_with
from text_fakes import block_item_embeddings
from toy import block_split

FAST_TRAIN = TrainConfig(epochs=20, batch_size=64, lr=0.05, l2=1e-4, progress=False)
#: the toy data has rank-2 structure: size settings are small
TOY_SIZES = {"dim": 4, "n_factors": 2}
FULL = models_with(full_ranking=True)
CANDIDATE_ONLY = models_with(full_ranking=False)
PERSONALISED = models_with(full_ranking=True, personalised=True)
TRAINED = models_with(full_ranking=True, trainable=True)


@pytest.fixture(scope="module")
def split():
    return block_split()


@pytest.fixture(scope="module")
def fitted(split):
    content = {"item_embeddings": block_item_embeddings(split.n_items)}
    return {name: _build(name).fit(split.train, **(content if MODELS[name].content_aware else {})) for name in FULL}


def _build(name, seed=0):
    params = {k: v for k, v in TOY_SIZES.items() if k in model_settings(name)}
    return build_model(name, params, train=FAST_TRAIN, seed=seed)


def test_registry_names_every_scorer_once():
    assert {"random", "popularity", "mf", "lightgcn", "ngcf", "gfcf", "content", "hybrid", "pinsage",
            "llm"} <= set(MODELS)
    for name in MODELS:
        assert MODELS[name].name == name
    assert models_with(distributed=True) == ["mf", "lightgcn", "ngcf", "hybrid", "pinsage"]
    assert CANDIDATE_ONLY == ["llm"]


@pytest.mark.parametrize("name", sorted(FULL))
def test_score_shape_and_finite(fitted, split, name):
    s = fitted[name].score_users(torch.arange(split.n_users))
    assert s.shape == (split.n_users, split.n_items)
    assert torch.isfinite(s).all()


@pytest.mark.parametrize("name", PERSONALISED)
def test_learns_the_blocks(fitted, split, name):
    """Held-out items outscore the other block's items (pairwise AUC; random gives 0.5)."""
    s = fitted[name].score_users(torch.arange(split.n_users)).numpy()
    n = split.n_items // 2
    aucs = []
    for u in range(split.n_users):
        other = slice(n, None) if u < n else slice(0, n)
        test_scores = s[u, split.test.items[split.test.users == u]]
        aucs.append((test_scores[:, None] > s[u, other][None, :]).mean())
    assert np.mean(aucs) >= 0.95


def test_popularity_known_answer(fitted, split):
    ids, scores = fitted["popularity"].recommend("u20", k=3, exclude_seen=False)
    assert ids[0] == "a0" and int(scores[0]) == 12  # every block-A user has a0 in training
    assert list(scores) == sorted(scores, reverse=True)


def test_popularity_breaks_ties_by_seeded_random_order():
    """Items never seen in training are not ranked by item index (which often encodes age)."""
    from hybridrec.data import Interactions, Vocabulary

    train = Interactions(np.array([0, 0, 1]), np.array([0, 1, 1]), Vocabulary(["u1", "u2"], kind="user"),
                         Vocabulary([f"i{j}" for j in range(200)], kind="item"))
    order = {}
    for seed in (0, 1):
        model = build_model("popularity", seed=seed).fit(train)
        s = model.score_users(torch.tensor([0]))[0]
        assert s.argmax() == 1 and int(s[0]) == 1 and torch.all(s[2:] < 1)  # counts decide first
        order[seed] = torch.argsort(s[2:], descending=True)
    assert not torch.equal(order[0], torch.arange(198))  # not index order
    assert not torch.equal(order[0], order[1])  # the seed decides


@pytest.mark.parametrize("name", sorted(FULL))
def test_recommend_excludes_seen_and_speaks_external_ids(fitted, split, name):
    model = fitted[name]
    ids, scores = model.recommend("u3", k=5)
    seen = set(split.train.item_vocab.lookup(split.train.items[split.train.users == 3]))
    assert len(ids) == 5 and not (set(ids) & seen)
    assert all(isinstance(i, str) and i[0] in "ab" for i in ids)
    assert np.all(np.diff(scores) <= 0)


@pytest.mark.parametrize("name", sorted(FULL))
def test_bad_requests_are_clear_errors(fitted, name):
    model = fitted[name]
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        model.recommend("nobody", k=3)
    with pytest.raises(ValueError, match="rankable items"):
        model.recommend("u0", k=17)  # 24 items, 8 seen: at most 16


@pytest.mark.parametrize("name", sorted(FULL))
def test_save_load_round_trip(fitted, split, name, tmp_path):
    model = fitted[name]
    path = model.save(tmp_path / name)
    again = load_model(path)
    users = torch.arange(split.n_users)
    assert torch.equal(model.score_users(users), again.score_users(users))
    assert list(again.recommend("u5", k=4)[0]) == list(model.recommend("u5", k=4)[0])
    model.save(tmp_path / name)  # overwriting an existing save works
    assert torch.equal(load_model(path).score_users(users), model.score_users(users))


def test_load_rejects_corrupt_weights(fitted, tmp_path):
    path = fitted["mf"].save(tmp_path / "mf")
    (path / "weights.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="corrupt"):
        load_model(path)


def test_same_seed_same_model(split):
    a = _build("mf", seed=3).fit(split.train)
    b = _build("mf", seed=3).fit(split.train)
    c = _build("mf", seed=4).fit(split.train)
    users = torch.arange(split.n_users)
    assert torch.equal(a.score_users(users), b.score_users(users))
    assert not torch.equal(a.score_users(users), c.score_users(users))


@pytest.mark.parametrize("name", TRAINED)
def test_bpr_loss_goes_down(fitted, name):
    losses = fitted[name].history.losses()
    assert losses[-1] < 0.5 * losses[0]


def test_unknown_model_and_setting_errors():
    with pytest.raises(ValueError, match="valid models: .*mf"):
        build_model("nope")
    with pytest.raises(ValueError, match="no setting"):
        build_model("mf", {"dimension": 3})


# -- candidate-only models (the LLM ranker) ------------------------------------------------
@pytest.fixture(scope="module")
def titled(split):
    """The toy split with item titles (a candidate-only ranker reads item text)."""
    table = pd.DataFrame({"title": [f"Item {i} of block {i[0].upper()}" for i in split.train.item_vocab.ids],
                          "description": "", "genres": "", "tags": ""})
    return dataclasses.replace(split.train, item_table=table)


@pytest.fixture(scope="module")
def ranked(titled, tmp_path_factory):
    pytest.importorskip("transformers")
    from llm_fakes import save_tiny_llm

    folder = save_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))
    return {name: build_model(name, {"model": folder, "history_len": 4}, seed=0).fit(titled)
            for name in CANDIDATE_ONLY}


CANDIDATES = ["a1", "a5", "b2", "b7"]


@pytest.mark.parametrize("name", CANDIDATE_ONLY)
def test_candidate_scores_shape_finite_and_deterministic(ranked, name):
    s = ranked[name].score(["u0", "u20"], CANDIDATES)
    assert s.shape == (2, len(CANDIDATES)) and np.isfinite(s).all()
    np.testing.assert_array_equal(s, ranked[name].score(["u0", "u20"], CANDIDATES))


@pytest.mark.parametrize("name", CANDIDATE_ONLY)
def test_candidate_only_refuses_full_ranking_and_unknown_ids(ranked, name):
    with pytest.raises(NotImplementedError, match="candidate lists"):
        ranked[name].score_users(torch.arange(3))
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        ranked[name].score(["nobody"], CANDIDATES)


@pytest.mark.parametrize("name", CANDIDATE_ONLY)
def test_candidate_only_save_load_round_trip(ranked, name, tmp_path):
    path = ranked[name].save(tmp_path / name)
    again = load_model(path)
    np.testing.assert_allclose(again.score(["u3"], CANDIDATES), ranked[name].score(["u3"], CANDIDATES), atol=1e-6)
