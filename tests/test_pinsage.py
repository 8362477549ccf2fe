"""PinSage: random-walk neighbourhoods, the convolution's formula, the curriculum, the sampled
computation graph's size, learning the toy blocks, new items and persistence."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from hybridrec.config import TrainConfig
from hybridrec.graph.walks import WalkGraph, computation_graph, importance_neighbours, neighbour_table
from hybridrec.models.base import accepted_settings
from hybridrec.data.sequences import history_tail, recent_items
from hybridrec.models.pinsage import (PinSage, PinSageConv, topk_chunked, curriculum)
from hybridrec.train.distributed import DistContext
from text_fakes import FakeEncoder, block_item_embeddings
from toy import block_split

FAST = TrainConfig(epochs=15, batch_size=64, lr=0.05, l2=1e-4, progress=False)


def two_cliques(k: int = 5) -> sp.csr_matrix:
    """Users 0..k-1 take items 0..k-1, users k..2k-1 items k..2k-1; one last user links
    item k-1 and item k, the only path between the cliques."""
    rows, cols = [], []
    for block in (0, k):
        for u in range(block, block + k):
            for i in range(block, block + k):
                rows.append(u)
                cols.append(i)
    rows += [2 * k, 2 * k]
    cols += [k - 1, k]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(2 * k + 1, 2 * k + 1))  # item 2k: no users


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def auc(model, split) -> float:
    """Mean over users of P(held-out item of their block > item of the other block)."""
    s = model.score_users(torch.arange(split.n_users)).numpy()
    n = split.n_items // 2
    out = []
    for u in range(split.n_users):
        other = slice(n, None) if u < n else slice(0, n)
        test = s[u, split.test.items[split.test.users == u]]
        out.append((test[:, None] > s[u, other][None, :]).mean())
    return float(np.mean(out))


# -- random walks ------------------------------------------------------------------------
def test_walk_neighbours_stay_in_their_clique_and_weights_sum_to_one():
    csr = two_cliques()
    nbrs, w = importance_neighbours(csr, torch.arange(11), n_walks=200, walk_length=3, restart_p=0.3,
                                    top_t=4, generator=_gen())
    assert nbrs.shape == (11, 4) and w.shape == (11, 4) and nbrs.dtype == torch.long
    for i in range(10):
        clique = set(range(5)) if i < 5 else set(range(5, 10))
        assert set(nbrs[i].tolist()) <= clique - {i}  # 4 most visited = the rest of its clique
        assert float(w[i].sum()) == pytest.approx(1.0)
        assert torch.all(w[i, :-1] >= w[i, 1:])  # sorted by importance
    assert nbrs[10].tolist() == [-1] * 4 and w[10].sum() == 0  # no interactions, no neighbours


def test_walks_are_seeded_and_pad_short_neighbourhoods():
    csr = two_cliques()
    a = importance_neighbours(csr, [0, 7], 50, 2, 0.5, 20, _gen(3))
    b = importance_neighbours(WalkGraph(csr), torch.tensor([0, 7]), 50, 2, 0.5, 20, _gen(3))
    c = importance_neighbours(csr, [0, 7], 50, 2, 0.5, 20, _gen(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    nbrs, w = a
    n_found = (nbrs >= 0).sum(1)
    assert torch.all(n_found < 20) and torch.all(nbrs[0, n_found[0]:] == -1) and torch.all(w[0, n_found[0]:] == 0)
    torch.testing.assert_close(w.sum(1), torch.ones(2))
    with pytest.raises(ValueError, match="restart_p"):
        importance_neighbours(csr, [0], restart_p=1.0)
    with pytest.raises(IndexError, match="item indices"):
        importance_neighbours(csr, [11])


def test_neighbour_table_covers_every_item_in_batches():
    csr = two_cliques()
    nbrs, w = neighbour_table(csr, n_walks=100, walk_length=3, top_t=3, generator=_gen(), batch_size=4)
    assert nbrs.shape == (11, 3)
    assert all(set(nbrs[i].tolist()) <= (set(range(5)) if i < 5 else set(range(5, 10))) for i in range(10))
    assert torch.all(nbrs[10] == -1)


# -- the sampled computation graph --------------------------------------------------------
def test_computation_graph_size_is_bounded_by_the_fan_out_not_the_graph():
    rng = np.random.default_rng(0)
    n_users, n_items, t = 400, 300, 3
    csr = sp.csr_matrix((np.ones(3000), (rng.integers(0, n_users, 3000), rng.integers(0, n_items, 3000))),
                        shape=(n_users, n_items))
    table = neighbour_table(csr, n_walks=20, walk_length=3, top_t=t, generator=_gen())
    targets = torch.tensor([0, 5, 5, 17])  # a duplicate target is embedded once
    g = computation_graph(targets, lambda i: (table[0][i], table[1][i]), n_layers=2)
    assert g.n_nodes <= len(targets) * (1 + t + t ** 2) < n_items
    assert len(g.layers) == 2 and torch.equal(g.level_nodes[-1][g.target_index], targets)
    for (s, n, w), out, src in zip(g.layers, g.level_nodes, [g.nodes] + g.level_nodes[:-1]):
        assert torch.equal(src[s], out)  # each layer's self index points at the same item
        assert torch.equal(torch.where(n >= 0, src[n.clamp_min(0)], -1), table[0][out])  # neighbours too


# -- the convolution and the curriculum ---------------------------------------------------
def test_conv_is_the_documented_formula():
    torch.manual_seed(0)
    conv = PinSageConv(3, 5, hidden_dim=4)
    h = torch.randn(6, 3)
    self_index = torch.tensor([0, 1, 2])
    nbr = torch.tensor([[3, 4, -1], [5, -1, -1], [-1, -1, -1]])
    w = torch.tensor([[0.6, 0.4, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    out = conv(h, self_index, nbr, w)
    msg = F.relu(conv.neighbour(h))
    pooled = torch.stack([0.6 * msg[3] + 0.4 * msg[4], msg[5], torch.zeros(4)])  # weights sum to 1; none: 0
    want = F.normalize(F.relu(conv.update(torch.cat([h[:3], pooled], 1))), dim=1)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    unnormalised = conv(h, self_index, nbr, 3 * w)  # a weighted mean: the scale of the weights does not matter
    torch.testing.assert_close(unnormalised, out)


def test_curriculum_schedule():
    assert [curriculum(e) for e in range(9)] == [0, 1, 2, 3, 4, 5, 6, 6, 6]  # the paper's: epoch n, n - 1
    assert [curriculum(e, easy_epochs=3, hard_per_epoch=2, max_hard=5) for e in range(7)] == [0, 0, 0, 2, 4, 5, 5]
    assert PinSage(easy_epochs=2, max_hard=1).curriculum(5) == 1


def test_topk_in_chunks_equals_plain_topk():
    torch.manual_seed(0)
    q, z = torch.randn(3, 4), torch.randn(50, 4)
    mask = torch.rand(50) > 0.3
    want = torch.topk((q @ z.T).masked_fill(~mask, -torch.inf), 7, dim=1).indices
    assert torch.equal(topk_chunked(q, z, mask, 7), want)
    assert torch.equal(topk_chunked(q, z, mask, 7, max_pairs=3 * 8), want)  # chunks of 8 items


def test_recent_items_follow_timestamps():
    s = block_split()
    tr = s.train
    ts = np.arange(len(tr))[::-1].copy()  # reverse time: the first rows are the most recent
    from hybridrec.data import Interactions

    timed = Interactions(tr.users, tr.items, tr.user_vocab, tr.item_vocab, timestamps=ts, name="t")
    ptr, items = recent_items(timed, 3)
    assert torch.all(ptr[1:] - ptr[:-1] == 3)
    assert set(items[:3].tolist()) == set(tr.items[tr.users == 0][:3].tolist())
    for k in (1, 3, 1000):  # the tail of the whole histories is the k most recent
        tail = history_tail(recent_items(timed, len(timed)), k)
        assert all(torch.equal(x, y) for x, y in zip(tail, recent_items(timed, k)))


# -- the recommender ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def split():
    return block_split()


@pytest.fixture(scope="module")
def model(split):
    content = block_item_embeddings(split.n_items)
    return PinSage(dim=4, fan_out=5, train=FAST).fit(split.train, item_embeddings=content)


def test_loss_goes_down_and_the_blocks_are_learned(model, split):
    losses = model.history.losses()
    assert losses[-1] < 0.5 * losses[0]
    assert [r["n_hard"] for r in model.history.rows][:4] == [0, 1, 2, 3]
    assert auc(model, split) > 0.9


def test_ids_only_model_learns_the_blocks(split):
    m = PinSage(dim=4, use_content=False, train=FAST, seed=1).fit(split.train)
    assert m.settings()["use_content"] is False and m.content_embeddings is None
    assert auc(m, split) > 0.9
    with pytest.raises(ValueError, match="without item content"):
        m.new_items([{"item_id": "n", "title": "x"}], encoder=FakeEncoder())


def test_user_queries_average_several_history_items_and_learn_the_blocks(split):
    m = PinSage(dim=4, query_items=4, n_easy=2, use_content=False, train=FAST, seed=1).fit(split.train)
    assert auc(m, split) > 0.9
    users = torch.tensor([0, 3, 15, 20, 20])
    pos = torch.tensor([int(split.train.items[split.train.users == u][0]) for u in users])
    q = m._queries(users, pos, _gen())
    assert q.shape == (5, 4)
    assert not (q == pos[:, None]).any()  # the positive never queries for itself
    assert m._sampler.is_positive(users[:, None].expand(-1, 4), q).all()  # the user's own items


def test_preceding_queries_come_from_the_items_just_before_the_positive(split):
    from hybridrec.data import Interactions

    tr = split.train
    timed = Interactions(tr.users, tr.items, tr.user_vocab, tr.item_vocab, timestamps=np.arange(len(tr)), name="t")
    m = PinSage(dim=4, query_items=3, query_from="preceding", query_window=2, use_content=False, train=FAST,
                seed=1).fit(timed)
    assert auc(m, split) > 0.9
    users, pos, at = m._pairs(timed)
    ptr, seq = m._seq
    for u in (0, 7, 20):  # each user's items in time order; all but the first are positives
        assert seq[ptr[u]:ptr[u + 1]].tolist() == tr.items[tr.users == u].tolist()
        assert pos[users == u].tolist() == tr.items[tr.users == u][1:].tolist()
    q = m._queries(users, pos, _gen(), at)
    assert q.shape == (len(users), 3)
    first = at - ptr[users] == 1  # second item: only the first can query for it
    assert torch.all(q[first] == seq[at[first] - 1][:, None])
    window = torch.stack([seq[at - 1], seq[(at - 2).clamp_min(0)]], 1)
    assert torch.all((q[:, :, None] == window[:, None, :]).any(-1))  # one of the two items before
    later = q[~first]  # and both of them are drawn
    assert (later == seq[at[~first] - 2][:, None]).any() and (later == seq[at[~first] - 1][:, None]).any()


def test_sparse_id_embeddings_learn_the_blocks_and_update_only_batch_rows(split):
    m = PinSage(dim=4, sparse_ids=True, use_content=False, train=FAST, seed=1).fit(split.train)
    assert auc(m, split) > 0.9
    assert m.module.item.sparse
    m.module.zero_grad(set_to_none=True)
    graph = m.sample_graph(torch.tensor([0, 1]))
    m.module(graph).sum().backward()
    grad = m.module.item.weight.grad
    assert grad.is_sparse  # rows: the computation graph's input nodes, not the catalogue
    assert torch.equal(grad.coalesce().indices()[0].unique(), graph.nodes)


def test_steps_per_epoch_caps_the_batches(split):
    cfg = dataclasses.replace(FAST, epochs=2, batch_size=16)
    m = PinSage(dim=4, steps_per_epoch=3, use_content=False, train=cfg).fit(split.train)
    assert [r["pairs"] for r in m.history.rows] == [48, 48]
    assert 0.4 < m.history.rows[0]["loss"] < 1.0  # a mean over the 48 pairs trained on (BPR starts near ln 2)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        PinSage(steps_per_epoch=0)


class OneOfTwo:
    """Accelerator stand-in for rank 0 of 2 without a process group: no wrapping, no reduction."""

    def prepare(self, *objs):
        return objs

    def backward(self, loss):
        loss.backward()

    def reduce(self, total, reduction):
        return total


def test_distributed_training_needs_the_context_passed_in(split, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # a launcher's environment does not make fit distributed
    cfg = dataclasses.replace(FAST, epochs=2, batch_size=16)
    one = PinSage(dim=4, use_content=False, train=cfg).fit(split.train)
    n_pairs = len(one._pairs(split.train)[0])
    assert [r["pairs"] for r in one.history.rows] == [n_pairs, n_pairs]

    half = PinSage(dim=4, use_content=False, train=cfg).fit(split.train, dist=DistContext(0, 2, OneOfTwo()))
    shares = sum(DistContext(0, 2, None).share(min(16, n_pairs - s)).stop for s in range(0, n_pairs, 16))
    assert [r["pairs"] for r in half.history.rows] == [shares, shares]
    assert len(half.trained_pairs) == shares and len(half.trained_pairs.unique()) == shares  # epoch 1's share


def test_training_batches_respect_the_memory_bound(model):
    t = model.fan_out  # query items, positive, uniform + hard negatives:
    per_pair = model.query_items + 1 + model.n_easy + model.max_hard
    targets = FAST.batch_size * per_pair
    assert 0 < max(r["max_nodes"] for r in model.history.rows) <= targets * (1 + t + t ** 2)


def test_hard_negatives_come_from_the_window_and_are_not_the_users_items(model, split):
    z = model._embed_all()
    users = torch.tensor([0, 3, 15, 20])
    q = torch.tensor([int(split.train.items[split.train.users == u][0]) for u in users])
    neg = model._hard(z, q[:, None], users, 5, _gen())  # one query item per row
    assert neg.shape == (4, 5)
    assert not model._sampler.is_positive(users[:, None].expand(-1, 5), neg).any()
    lo, hi = model.hard_window[0], min(model.hard_window[1], split.n_items)
    ranks = torch.argsort(torch.argsort(z[q] @ z.T, dim=1, descending=True), dim=1)
    assert torch.all(ranks.gather(1, neg) >= lo) and torch.all(ranks.gather(1, neg) < hi)


def test_user_vectors_are_the_mean_of_recent_item_embeddings(model, split):
    users, items = model.embeddings()
    mine = np.unique(split.train.items[split.train.users == 7])
    torch.testing.assert_close(users[7], items[mine].mean(0))


def test_same_seed_same_model(split):
    a = PinSage(dim=4, train=dataclasses.replace(FAST, epochs=3), seed=2).fit(split.train)
    b = PinSage(dim=4, train=dataclasses.replace(FAST, epochs=3), seed=2).fit(split.train)
    u = torch.arange(split.n_users)
    assert torch.equal(a.score_users(u), b.score_users(u))


def test_validation_keeps_the_best_epoch(split):
    cfg = dataclasses.replace(FAST, epochs=4, eval_every=2, valid_metric="recall@5")
    content = block_item_embeddings(split.n_items)
    m = PinSage(dim=4, train=cfg).fit(split.train, split.test, item_embeddings=content)
    assert m.history.best_epoch in (2, 4) and "recall@5" in m.history.rows[1]


@pytest.fixture(scope="module")
def cold_split():
    """The toy blocks with item b11 held out of training (a cold item), and item text."""
    s = block_split()
    s.train = s.train.subset(s.train.items != s.n_items - 1)
    texts = [f"{'alpha' if i < 12 else 'beta'} story number {i}" for i in range(s.n_items)]
    s.train.item_table = pd.DataFrame({"title": texts})
    return s


@pytest.fixture(scope="module")
def text_model(cold_split):
    return PinSage(dim=4, train=FAST).fit(cold_split.train, encoder=FakeEncoder())


def test_new_item_is_embedded_without_retraining(text_model, cold_split):
    m = text_model
    before = {k: v.clone() for k, v in m.module.state_dict().items()}
    cold = cold_split.n_items - 1
    _, items = m.embeddings()
    torch.testing.assert_close(items[cold], m.module.embed_isolated(m.content_embeddings[cold:]).detach()[0])
    text = cold_split.train.item_table.iloc[cold].to_dict()
    new = m.new_items([{"item_id": "fresh", **text}, {"item_id": "other", "title": "alpha story new"}],
                      encoder=FakeEncoder())
    s_new = m.score_new_items(new)
    s_cold = m.score_users(torch.arange(cold_split.n_users))[:, cold].numpy()
    np.testing.assert_allclose(s_new[:, 0], s_cold, rtol=1e-5, atol=1e-5)  # same text, no interactions: same score
    assert all(torch.equal(v, m.module.state_dict()[k]) for k, v in before.items())  # nothing was trained
    ids, _ = m.recommend("u3", k=5, new_items=new)
    assert len(ids) == 5
    assert list(m.top_users(new, k=3)) == ["fresh", "other"]


def test_save_load_round_trip(text_model, cold_split, tmp_path):
    from hybridrec.models import build_model, load_model, MODELS

    assert MODELS["pinsage"] is PinSage
    path = text_model.save(tmp_path / "pinsage")
    again = load_model(path)
    users = torch.arange(cold_split.n_users)
    assert torch.equal(again.score_users(users), text_model.score_users(users))
    new = text_model.new_items([{"item_id": "n1", "title": "beta story"}], encoder=FakeEncoder())
    np.testing.assert_array_equal(again.score_new_items(new), text_model.score_new_items(new))
    assert torch.equal(again._nbrs, text_model._nbrs)
    assert set(text_model.settings()) <= accepted_settings(PinSage)
    assert build_model("pinsage", {"dim": 4}).dim == 4


@pytest.mark.parametrize("bad, message", [
    ({"loss": "hinge"}, "loss must be"),
    ({"query_from": "future"}, "query_from must be"),
    ({"query_window": 0}, "query_window"),
    ({"hard_window": [5, 5]}, "hard_window"),
    ({"fan_out": 0}, "fan_out"),
    ({"use_content": False, "id_embedding": False}, "no input"),
])
def test_bad_settings_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        PinSage(**bad)
