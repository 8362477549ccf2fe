"""PyTorch Geometric interop: ``to_pyg``/``from_pyg`` round trips, and hybridrec's ranking
metrics cross-checked against PyG's ``LinkPred*`` metrics on the same top-K lists.

Definitions compared (read from ``torch_geometric/metrics/link_pred.py``, PyG 2.8.1):

* ``LinkPredRecall``: hits in the top K / |R_u|, as ours (not / min(K, |R_u|));
* ``LinkPredPrecision``: hits / K, as ours;
* ``LinkPredNDCG``: binary gains, IDCG over min(K, |R_u|) ranks, as ours;
* ``LinkPredHitRatio``: as our ``hitrate``;
* ``LinkPredMRR``: reciprocal rank of the first hit *within the top K* (0 below), which is
  our ``mrr_at_k`` (reported ``mrr@K``), not our ``mrr`` (the full ranking, no cut-off).
  With K = the catalogue size the two agree, which the test checks.

PyG averages over examples with at least one label, as the evaluator averages over users
with at least one target, so feeding every user gives the same means.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hybridrec.data import DataError, Interactions, load_dataset, make_split
from hybridrec.data.pyg import EDGE, REV_EDGE
from hybridrec.eval.evaluator import evaluate

pytest.importorskip("torch_geometric")


def assert_equal(a: Interactions, b: Interactions) -> None:
    assert a.name == b.name and a.user_vocab == b.user_vocab and a.item_vocab == b.item_vocab
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.items, b.items)
    for attr in ("timestamps", "ratings"):
        x, y = getattr(a, attr), getattr(b, attr)
        assert (x is None) == (y is None) and (x is None or (x.dtype == y.dtype and (x == y).all()))
    assert (a.item_table is None) == (b.item_table is None)
    if a.item_table is not None:
        pd.testing.assert_frame_equal(a.item_table, b.item_table)


@pytest.fixture(scope="module")
def small():
    return load_dataset("synthetic", n_users=60, n_items=40, seed=3)


def test_to_pyg_layout(small):
    g = small.to_pyg()
    assert g["user"].num_nodes == small.n_users and g["item"].num_nodes == small.n_items
    assert g["user"].ids == small.user_vocab.to_list() and g["item"].ids[0] == small.item_vocab.ids[0]
    ei = g[EDGE].edge_index
    assert ei.dtype == torch.long and tuple(ei.shape) == (2, len(small))
    assert ei[0].tolist() == small.users.tolist() and ei[1].tolist() == small.items.tolist()
    assert torch.equal(g[REV_EDGE].edge_index, ei.flip(0))
    assert g[EDGE].time.tolist() == small.timestamps.tolist()
    assert g["item"].title == small.item_table["title"].tolist()
    g[EDGE].time[0] = -1  # the graph holds copies, not views of the Interactions
    assert small.timestamps[0] != -1
    assert g.validate()


def test_round_trip_is_exact(small, tmp_path):
    assert_equal(Interactions.from_pyg(small.to_pyg()), small)
    rated = Interactions.from_pandas(
        pd.DataFrame({"user_id": ["a", "b", "b"], "item_id": [3, 1, 3], "r": [4.5, 1.0, 2.0]}),
        rating_col="r", name="rated")
    back = Interactions.from_pyg(rated.to_pyg())
    assert_equal(back, rated)
    assert back.timestamps is None and back.item_table is None and back.ratings.dtype == np.float32


def test_round_trip_keeps_the_fold_of_a_given_split(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1\n1 1 2\n")
    (tmp_path / "test.txt").write_text("0 2\n1 0\n")
    data = load_dataset("gowalla", str(tmp_path), download=False)
    back = Interactions.from_pyg(data.to_pyg())
    assert_equal(back, data)
    np.testing.assert_array_equal(back.meta["fold"], data.meta["fold"])


def test_from_pyg_without_ids_and_bad_graphs():
    from torch_geometric.data import Data, HeteroData

    g = HeteroData()
    g["user"].num_nodes, g["item"].num_nodes = 2, 3
    g[EDGE].edge_index = torch.tensor([[0, 1, 1], [2, 0, 2]])
    g["item"].title = ["x", "y", "z"]
    data = Interactions.from_pyg(g)
    assert data.item_vocab.to_list() == ["0", "1", "2"] and data.name == "pyg"
    assert data.item_table["title"].tolist() == ["x", "y", "z"]
    assert data.item_table["genres"].tolist() == ["", "", ""]
    g[EDGE].edge_index = torch.tensor([[0, 1], [2, 3]])
    with pytest.raises(DataError, match=r"edge 1 of \('user', 'interacts', 'item'\) names item 3"):
        Interactions.from_pyg(g)
    g[EDGE].edge_index = torch.tensor([[0.0, 1.0], [2.0, 1.0]])
    with pytest.raises(DataError, match="must be an integer tensor"):
        Interactions.from_pyg(g)
    g[EDGE].edge_index = torch.tensor([[0, 1], [2, 1]])
    g[EDGE].time = torch.tensor([1, 2, 3])
    with pytest.raises(DataError, match=r"edge attribute 'time'.*shape \(3,\), expected \(2,\)"):
        Interactions.from_pyg(g)
    del g[EDGE].time
    g["user"].ids = ["a"]
    with pytest.raises(DataError, match="'user' has 1 ids but 2 nodes"):
        Interactions.from_pyg(g)
    with pytest.raises(DataError, match="no edge_index for edge type"):
        Interactions.from_pyg(g, edge_type=("user", "rates", "item"))
    with pytest.raises(DataError, match="expected a torch_geometric HeteroData, not Data"):
        Interactions.from_pyg(Data())


# -- metrics cross-check ------------------------------------------------------------------
KS = (1, 5, 20)


def _scores(split, seed=0) -> torch.Tensor:
    """Popularity plus noise: realistic, tie-free rankings, float64 [n_users, n_items]."""
    gen = torch.Generator().manual_seed(seed)
    pop = torch.as_tensor(split.train.item_counts(), dtype=torch.float64)
    return pop + 3.0 * torch.rand(split.n_users, split.n_items, generator=gen, dtype=torch.float64)


def _pyg_inputs(split, scores, k):
    """Our top-K per user with training items masked, and the test edges as PyG labels."""
    seen = split.train.to_pyg()[EDGE].edge_index
    masked = scores.clone()
    masked[seen[0], seen[1]] = float("-inf")
    top = torch.topk(masked, k, dim=1).indices
    test = split.test.to_pyg()[EDGE].edge_index
    seen_keys = set((seen[0] * split.n_items + seen[1]).tolist())
    keep = torch.tensor([key not in seen_keys for key in (test[0] * split.n_items + test[1]).tolist()],
                        dtype=torch.bool)
    return top, test[:, keep]


def _pyg_metrics(top, labels, k):
    from torch_geometric.metrics import (LinkPredHitRatio, LinkPredMRR, LinkPredNDCG,
                                         LinkPredPrecision, LinkPredRecall)

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # PyG accumulates in the default dtype
    try:
        out = {}
        for key, cls in (("recall", LinkPredRecall), ("precision", LinkPredPrecision),
                         ("ndcg", LinkPredNDCG), ("mrr", LinkPredMRR),
                         ("hitrate", LinkPredHitRatio)):
            metric = cls(k)
            for rows in torch.arange(top.shape[0]).split(257):  # batches accumulate
                sel = (labels[0] >= rows[0]) & (labels[0] <= rows[-1])
                metric.update(top[rows], torch.stack([labels[0][sel] - rows[0], labels[1][sel]]))
            out[f"{key}@{k}"] = float(metric.compute())
        return out
    finally:
        torch.set_default_dtype(old)


def _cross_check(split):
    scores = _scores(split)
    ours = evaluate(lambda users: scores[users].clone(), split, ks=KS,
                    metrics=("recall", "precision", "ndcg", "mrr_at_k", "hitrate", "mrr"))["all"]
    top, labels = _pyg_inputs(split, scores, max(KS))
    assert len(labels[0].unique()) > 50 and (torch.bincount(labels[0]) > max(KS)).any()
    for k in KS:
        theirs = _pyg_metrics(top[:, :k], labels, k)
        for key, value in theirs.items():
            assert ours[key] == pytest.approx(value, abs=1e-6), key
    # our full-ranking MRR is PyG's MRR@K with K the whole catalogue
    full, labels = _pyg_inputs(split, scores, split.n_items)
    assert ours["mrr"] == pytest.approx(_pyg_metrics(full, labels, split.n_items)["mrr@" + str(
        split.n_items)], abs=1e-6)
    assert ours["mrr"] > ours[f"mrr@{max(KS)}"]
    return ours


def test_metrics_match_pyg_on_synthetic():
    data = load_dataset("synthetic", n_users=300, n_items=200, seed=1)
    ours = _cross_check(make_split(data, "temporal", test_fraction=0.3))
    assert ours["recall@20"] > 0.05  # the lists hold hits: the check is not vacuous


@pytest.mark.slow  # about 4 s on 2 CPU cores
@pytest.mark.filterwarnings("ignore:random splits leak the future")
def test_metrics_match_pyg_on_ml_100k(dataset_dir):
    data = load_dataset("ml-100k", str(dataset_dir("ml-100k")))
    # random: every user has targets, from 1 to well over K of them
    ours = _cross_check(make_split(data, "random", test_fraction=0.2, seed=0))
    assert ours["recall@20"] > 0.01
