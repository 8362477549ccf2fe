"""BSPM: known answers against the dense formulas, and its limits."""

import numpy as np
import pytest
import torch

from hybridrec.models import build_model, load_model
from toy import block_split


def _dense(split, beta, k):
    """GF-CF's blurred scores and the item-item filter, computed densely by hand."""
    r = split.train.to_csr().toarray().astype(np.float64)
    du, di = r.sum(1), r.sum(0)
    rn = r / np.sqrt(np.where(du > 0, du, 1))[:, None] / np.sqrt(np.where(di > 0, di, 1))[None, :]
    p = rn.T @ rn
    _, _, vt = np.linalg.svd(rn, full_matrices=False)
    v = vt[:k]
    d_inv = np.where(di > 0, 1 / np.sqrt(np.where(di > 0, di, 1)), 0)
    low = (r * d_inv) @ v.T @ v * np.sqrt(di)
    return r @ p + beta * low, p


@pytest.fixture(scope="module")
def split():
    return block_split()


def test_sharpen_time_zero_is_gfcf(split):
    users = torch.arange(split.n_users)
    b = build_model("bspm", {"n_factors": 4, "alpha": 0.3, "sharpen_time": 0, "svd": "exact"}).fit(split.train)
    g = build_model("gfcf", {"n_factors": 4, "alpha": 0.3, "svd": "exact"}).fit(split.train)
    torch.testing.assert_close(b.score_users(users), g.score_users(users))


@pytest.mark.parametrize("solver, steps", [("euler", 1), ("euler", 3), ("rk4", 1), ("rk4", 2)])
def test_sharpening_matches_the_dense_solution(split, solver, steps):
    """Euler: x <- x (I - hP); RK4 on dx/dt = -xP: x <- x (I - hP + (hP)^2/2 - (hP)^3/6 + (hP)^4/24)."""
    t, beta, k = 1.5, 0.2, 4
    m = build_model("bspm", {"n_factors": k, "alpha": beta, "sharpen_time": t, "sharpen_steps": steps,
                             "solver": solver, "svd": "exact"}).fit(split.train)
    x, p = _dense(split, beta, k)
    hp = (t / steps) * p
    eye = np.eye(p.shape[0])
    step = eye - hp if solver == "euler" else eye - hp + hp @ hp / 2 - hp @ hp @ hp / 6 + hp @ hp @ hp @ hp / 24
    for _ in range(steps):
        x = x @ step
    got = m.score_users(torch.arange(split.n_users)).double().numpy()
    np.testing.assert_allclose(got, x, rtol=1e-4, atol=1e-4)


def test_ranks_the_toy_blocks_and_survives_a_round_trip(split, tmp_path):
    m = build_model("bspm", {"n_factors": 4}).fit(split.train)
    s = m.score_users(torch.arange(split.n_users))
    s[torch.as_tensor(split.train.users), torch.as_tensor(split.train.items)] = -torch.inf
    top = torch.topk(s, 2).indices
    own_block = (top < 12) == (torch.arange(split.n_users) < 12)[:, None]
    assert bool(own_block.all())  # every user's top unseen items are in their own block
    again = load_model(m.save(tmp_path / "bspm"))
    torch.testing.assert_close(again.score_users(torch.arange(split.n_users)), m.score_users(torch.arange(split.n_users)))
    assert again.settings() == m.settings()


def test_bad_settings():
    with pytest.raises(ValueError, match="solver"):
        build_model("bspm", {"solver": "dopri5"})
    with pytest.raises(ValueError, match="sharpen_time >= 0"):
        build_model("bspm", {"sharpen_time": -1})
