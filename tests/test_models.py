"""Contract tests run against every registered model on the toy block data set."""

import numpy as np
import pytest
import torch

from hybridrec.config import TrainConfig
from hybridrec.data import UnknownIdError
from hybridrec.models import MODELS, build_model, load_model
from text_fakes import block_item_embeddings
from toy import block_split

FAST_TRAIN = TrainConfig(epochs=20, batch_size=64, lr=0.05, l2=1e-4, progress=False)
TOY_PARAMS = {"dim": 4}  # the toy data has rank-2 structure
PERSONALISED = [n for n in MODELS if n != "popularity"]
TRAINED = [n for n in PERSONALISED if n not in ("gfcf", "content")]
CONTENT_AWARE = ("content", "hybrid", "pinsage")  # fitted on toy content embeddings (the toy data has no text)


@pytest.fixture(scope="module")
def split():
    return block_split()


@pytest.fixture(scope="module")
def fitted(split):
    content = {"item_embeddings": block_item_embeddings(split.n_items)}
    return {name: _build(name).fit(split.train, **(content if name in CONTENT_AWARE else {})) for name in MODELS}


def _build(name, seed=0):
    params = TOY_PARAMS if name in TRAINED else {"n_factors": 2} if name == "gfcf" else {}
    return build_model(name, params, train=FAST_TRAIN, seed=seed)


@pytest.mark.parametrize("name", sorted(MODELS))
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


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recommend_excludes_seen_and_speaks_external_ids(fitted, split, name):
    model = fitted[name]
    ids, scores = model.recommend("u3", k=5)
    seen = set(split.train.item_vocab.lookup(split.train.items[split.train.users == 3]))
    assert len(ids) == 5 and not (set(ids) & seen)
    assert all(isinstance(i, str) and i[0] in "ab" for i in ids)
    assert np.all(np.diff(scores) <= 0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bad_requests_are_clear_errors(fitted, name):
    model = fitted[name]
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        model.recommend("nobody", k=3)
    with pytest.raises(ValueError, match="rankable items"):
        model.recommend("u0", k=17)  # 24 items, 8 seen: at most 16


@pytest.mark.parametrize("name", sorted(MODELS))
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
