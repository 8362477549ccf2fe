"""Spectral initialisation of the id embeddings (hybridrec.models.spectral)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hybridrec.eval import evaluate
from hybridrec.models import build_model
from hybridrec.models.spectral import spectral_embeddings

from toy import block_split


def _dense_reference(r: np.ndarray, k: int, beta: float) -> np.ndarray:
    """U_k S_k V_k^T D_I^beta of the normalised matrix, by numpy's exact SVD."""
    du, di = r.sum(1), r.sum(0)
    norm = r / np.sqrt(np.maximum(du, 1))[:, None] / np.sqrt(np.maximum(di, 1))[None, :]
    u, s, vt = np.linalg.svd(norm)
    return (u[:, :k] * s[:k]) @ vt[:k] * di[None, :] ** beta


def test_dot_products_are_the_degree_weighted_truncated_svd():
    rng = np.random.default_rng(0)
    r = (rng.random((30, 20)) < 0.3).astype(np.float32)
    r[0, :] = 1  # a heavy user, and every item has an interaction
    k = 4
    user, item = spectral_embeddings(sp.csr_matrix(r), k, std=0.1, n_iter=30)
    got = (user @ item.T).double().numpy()
    want = _dense_reference(r, k, 0.5)
    # equal up to one positive factor (the two tables are each rescaled to an RMS of std)
    c = (got * want).sum() / (want * want).sum()
    assert c > 0
    np.testing.assert_allclose(got, c * want, atol=1e-4 * np.abs(want).max() * c)


def test_tables_have_the_normal_initialisation_scale_and_fill_past_the_rank():
    r = sp.csr_matrix(np.eye(3, dtype=np.float32))  # rank 3, so at most 2 spectral dimensions
    user, item = spectral_embeddings(r, 8, std=0.05, seed=1)
    assert user.shape == (3, 8) and item.shape == (3, 8)
    assert torch.isfinite(user).all() and torch.isfinite(item).all()
    assert user[:, :2].pow(2).mean().sqrt().item() == pytest.approx(0.05, rel=1e-4)
    again = spectral_embeddings(r, 8, std=0.05, seed=1)
    assert torch.equal(user, again[0]) and torch.equal(item, again[1])


@pytest.mark.parametrize("name", ["mf", "lightgcn", "ngcf"])
def test_spectral_init_starts_where_the_svd_ranks_and_is_saved(name, tmp_path):
    split = block_split()
    params = {"dim": 2, "init": "spectral"}  # the degree and the block directions
    untrained = build_model(name, params, seed=0, train={"epochs": 1, "lr": 1e-6,
                                                         "progress": False, "eval_every": 0})
    untrained.fit(split.train)
    assert untrained.settings()["init"] == "spectral"
    recall = evaluate(untrained, split, ks=[10], metrics=["recall"]).metrics["all"]["recall@10"]
    # the two taste blocks are the graph's top singular directions: before any real training,
    # the test items (2 of the 4 unseen items of the user's own block) rank in the top 10 of
    # the 16 unseen items; a random order finds 10/16 of them
    assert recall > 0.9
    untrained.save(tmp_path / name)
    from hybridrec.models import load_model

    assert load_model(tmp_path / name).settings()["init"] == "spectral"


def test_unknown_init_is_a_clear_error():
    with pytest.raises(ValueError, match="init must be one of normal, spectral"):
        build_model("lightgcn", {"init": "svd"})
