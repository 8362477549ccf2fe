"""Known-answer propagation on a hand-sized bipartite graph."""

import math

import numpy as np
import scipy.sparse as sp
import torch

from hybridrec.graph import BipartiteGraph
from hybridrec.models.lightgcn import LightGCNModule

# u0 - i0, u0 - i1, u1 - i1.  Degrees: u0 2, u1 1, i0 1, i1 2.
R = sp.csr_matrix(np.array([[1, 1], [0, 1]], dtype=np.float32))
S2 = 1 / math.sqrt(2)  # 1/sqrt(2*1) for (u0,i0) and (u1,i1); (u0,i1) is 1/sqrt(2*2) = 0.5
USERS = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
ITEMS = torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def test_one_hop_is_normalised_neighbour_sum():
    g = BipartiteGraph(R)
    u, i = g.propagate(USERS, ITEMS)
    # u0 = S2*i0 + 0.5*i1 ; u1 = S2*i1
    assert torch.allclose(u, torch.tensor([[S2, 0.5], [0.0, S2]]))
    # i0 = S2*u0 ; i1 = 0.5*u0 + S2*u1
    assert torch.allclose(i, torch.tensor([[S2, S2], [0.5 + 2 * S2, 0.5]]))


def test_lightgcn_combines_layers_by_alpha():
    g = BipartiteGraph(R)
    m = LightGCNModule(g, dim=2, n_layers=1, alphas=[0.25, 0.75])
    with torch.no_grad():
        m.user.weight.copy_(USERS)
        m.item.weight.copy_(ITEMS)
    eu, ei = m()
    assert torch.allclose(eu[0], 0.25 * USERS[0] + 0.75 * torch.tensor([S2, 0.5]))
    assert torch.allclose(ei[1], 0.25 * ITEMS[1] + 0.75 * torch.tensor([0.5 + 2 * S2, 0.5]))


def test_default_alphas_are_uniform_mean_of_layers():
    g = BipartiteGraph(R)
    m = LightGCNModule(g, dim=2, n_layers=3)
    assert m.alphas == [0.25] * 4


def test_backward_matches_dense_product():
    rng = np.random.default_rng(0)
    r = sp.csr_matrix((rng.random((30, 20)) < 0.2).astype(np.float32))
    g = BipartiteGraph(r)
    x = torch.randn(20, 4, requires_grad=True)
    (g.users_from_items(x) ** 2).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    ((g.r.to_dense() @ x2) ** 2).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)
