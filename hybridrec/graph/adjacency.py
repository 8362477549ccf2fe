"""The symmetric-normalised user-item adjacency, stored as two CSR blocks.

The full adjacency of the bipartite graph is ``[[0, R], [R^T, 0]]``; its normalisation
``D^{-1/2} A D^{-1/2}`` only rescales ``R`` to ``R~ = D_u^{-1/2} R D_i^{-1/2}``. Propagating
``[E_u; E_i]`` through it is therefore ``(R~ E_i, R~^T E_u)``: two sparse-dense products
with half the non-zeros of the full matrix each. Both ``R~`` and ``R~^T`` are built once.

Why a hand-written backward: torch's default backward of a sparse CSR product is slow on
CPU; with the transposed matrix kept, the backward is one more CSR product. Measured on
Gowalla (810k edges, 64 dims, 2 CPU cores, torch 2.13, ``benchmarks/propagation.py``):
forward 7 ms; forward + backward 103 ms with torch's default, 17 ms with the prebuilt
transpose, 110 ms with COO ``torch.sparse.mm``.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch


def normalized_bipartite(train: sp.csr_matrix) -> sp.csr_matrix:
    r"""Symmetric normalisation of the users x items matrix.

    .. math:: \tilde R_{ui} = \frac{R_{ui}}{\sqrt{|N(u)|}\sqrt{|N(i)|}}

    Users or items with no interactions keep zero rows or columns.
    """
    r = sp.csr_matrix(train, dtype=np.float32)
    r.data[:] = 1.0
    du = np.asarray(r.sum(axis=1)).ravel()
    di = np.asarray(r.sum(axis=0)).ravel()
    inv_u = np.where(du > 0, 1.0 / np.sqrt(np.maximum(du, 1)), 0.0).astype(np.float32)
    inv_i = np.where(di > 0, 1.0 / np.sqrt(np.maximum(di, 1)), 0.0).astype(np.float32)
    out = sp.diags(inv_u) @ r @ sp.diags(inv_i)
    return sp.csr_matrix(out, dtype=np.float32)


def to_torch_csr(m: sp.csr_matrix, device) -> torch.Tensor:
    m = sp.csr_matrix(m)
    m.sort_indices()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        t = torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32)),
            size=m.shape,
        )
    return t.to(device)


class SpMM(torch.autograd.Function):
    """``A @ x`` whose backward is ``A^T @ grad`` with a prebuilt ``A^T``."""

    @staticmethod
    def forward(ctx, a, a_t, x):
        ctx.a_t = a_t
        return a @ x

    @staticmethod
    def backward(ctx, grad):
        return None, None, ctx.a_t @ grad.contiguous()


class BipartiteGraph:
    """A normalised user-item graph ready for propagation on ``device``.

    Args:
        train: users x items interaction matrix (binary; duplicates collapse).
        device: torch device of the sparse blocks.
    """

    def __init__(self, train: sp.csr_matrix, device: str | torch.device = "cpu"):
        norm = normalized_bipartite(train)
        self.n_users, self.n_items = norm.shape
        self.device = torch.device(device)
        self.r = to_torch_csr(norm, self.device)
        self.r_t = to_torch_csr(norm.T.tocsr(), self.device)
        self.nnz = norm.nnz

    def to(self, device) -> "BipartiteGraph":
        self.device = torch.device(device)
        self.r, self.r_t = self.r.to(self.device), self.r_t.to(self.device)
        return self

    def users_from_items(self, item_x: torch.Tensor) -> torch.Tensor:
        r"""Each user's normalised sum over its items: :math:`\tilde R x_I`."""
        return SpMM.apply(self.r, self.r_t, item_x)

    def items_from_users(self, user_x: torch.Tensor) -> torch.Tensor:
        r"""Each item's normalised sum over its users: :math:`\tilde R^\top x_U`."""
        return SpMM.apply(self.r_t, self.r, user_x)

    def propagate(self, user_x: torch.Tensor, item_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One hop through the normalised adjacency: ``(R~ x_I, R~^T x_U)``."""
        return self.users_from_items(item_x), self.items_from_users(user_x)
