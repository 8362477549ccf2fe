"""Stage-1 retrieval: faiss and torch search agree, seen items are excluded, HNSW is close."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hybridrec.eval.retrieval import ItemIndex, faiss_available, recall_at_m


@pytest.fixture(scope="module")
def vectors():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(500, 16, generator=gen), torch.randn(40, 16, generator=gen)


def test_known_answer():
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]])
    idx, val = ItemIndex(items, "torch").search(torch.tensor([[1.0, 0.1]]), 2)
    assert idx.tolist() == [[0, 2]] and val[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["exact", "torch"])
def test_exact_search_matches_brute_force(vectors, kind):
    items, queries = vectors
    idx, _ = ItemIndex(items, kind).search(queries, 10)
    expected = torch.topk(queries @ items.T, 10, dim=1).indices.numpy()
    assert (idx == expected).all()


def test_seen_items_are_excluded_and_m_filled(vectors):
    items, queries = vectors
    seen = sp.random(len(queries), len(items), density=0.2, format="csr", random_state=0)
    idx, _ = ItemIndex(items, "exact").search(queries, 20, exclude=seen)
    assert (idx >= 0).all()  # 20 unseen items for every user
    for r in range(len(queries)):
        assert not set(idx[r]) & set(seen.indices[seen.indptr[r]:seen.indptr[r + 1]])
    full = torch.topk(queries @ items.T, len(items), dim=1).indices.numpy()
    for r in range(len(queries)):  # the best 20 unseen, in order
        s = set(seen.indices[seen.indptr[r]:seen.indptr[r + 1]])
        assert list(idx[r]) == [i for i in full[r] if i not in s][:20]


@pytest.mark.skipif(not faiss_available(), reason="faiss not installed")
def test_hnsw_recall_close_to_exact(vectors):
    items, queries = vectors
    approx, _ = ItemIndex(items, "hnsw").search(queries, 10)
    exact, _ = ItemIndex(items, "exact").search(queries, 10)
    assert recall_at_m(approx, list(exact)) >= 0.95


def test_bad_input(vectors):
    items, queries = vectors
    with pytest.raises(ValueError, match="choose 1 <= m"):
        ItemIndex(items, "torch").search(queries, 501)
    with pytest.raises(ValueError, match="kind"):
        ItemIndex(items, "annoy")
    with pytest.raises(ValueError, match="queries must be"):
        ItemIndex(items, "torch").search(queries[:, :3], 5)
    bad = items.clone()
    bad[7, 0] = float("nan")
    with pytest.raises(ValueError, match="row 7"):
        ItemIndex(bad)


def test_recall_at_m():
    assert recall_at_m(np.array([[1, 2, 3], [4, 5, 6]]), [np.array([1, 9]), np.array([6])]) == pytest.approx(0.75)
