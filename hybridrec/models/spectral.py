"""Spectral initialisation of user and item embeddings from the training graph.

A BPR model started from random vectors spends most of its training finding the
low-frequency structure of the graph that a truncated SVD gives in seconds. Starting the
layer-0 embeddings from that SVD (the ``pretrain`` lever of the NGCF and LightGCN reference
code, here without a separate MF run) lets BPR spend its epochs on what the SVD misses.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..graph.adjacency import normalized_bipartite, to_torch_csr

#: initialisations of the id embeddings that :func:`initial_embeddings` knows
INITS = ("normal", "spectral")


def spectral_embeddings(train: sp.csr_matrix, dim: int, *, item_degree_power: float = 0.5,
                        std: float = 0.1, n_iter: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""User and item tables whose dot products are a degree-weighted rank-``dim`` SVD.

    With :math:`\tilde R = D_U^{-1/2} R D_I^{-1/2} \approx U_k S_k V_k^\top` (``k = dim``):

    .. math::
        E_U = c_U\, U_k S_k, \qquad E_I = c_I\, D_I^{\beta} V_k, \qquad
        E_U E_I^\top = c_U c_I\, U_k S_k V_k^\top D_I^{\beta}

    For :math:`\beta = 1/2` the scores rank items exactly as GF-CF's ideal low-pass filter
    (:math:`r_u D_I^{-1/2} V_k V_k^\top D_I^{1/2}`, Shen et al. 2021) does: a
    user's score row differs only by the factor :math:`\sqrt{|N(u)|}`. ``c_U`` and ``c_I``
    give each table an entry RMS of ``std``, the scale of the normal initialisation, so the
    BPR logits and the L2 penalty start where they would from random vectors.

    Dimensions past the matrix's rank are filled from N(0, std^2).

    Args:
        train: the users x items training matrix (binary).
        dim: embedding size ``k``.
        item_degree_power: :math:`\beta` (default 0.5).
        std: entry RMS of each table (default 0.1).
        n_iter: power iterations of the randomized SVD (default 8).
        seed: seed of the randomized SVD and of any filled dimensions.

    Returns:
        ``(user [n_users, dim], item [n_items, dim])`` float32 tensors on the CPU.
    """
    from .gfcf import randomized_right_singular

    norm = normalized_bipartite(train)
    n_users, n_items = norm.shape
    k = max(0, min(dim, min(n_users, n_items) - 1))
    gen = torch.Generator().manual_seed(seed)
    user = torch.randn(n_users, dim, generator=gen) * std
    item = torch.randn(n_items, dim, generator=gen) * std
    if k == 0:
        return user, item
    a = to_torch_csr(norm, "cpu")
    vt = randomized_right_singular(a, to_torch_csr(norm.T.tocsr(), "cpu"), k, n_iter, seed)
    us = a @ vt.T.contiguous()                                   # U_k S_k, users x k
    di = torch.as_tensor(np.asarray(sp.csr_matrix(train).sum(axis=0)).ravel(), dtype=torch.float32)
    v = vt.T * di.pow(item_degree_power)[:, None]
    user[:, :k] = _rms_scaled(us, std)
    item[:, :k] = _rms_scaled(v, std)
    return user, item


def _rms_scaled(x: torch.Tensor, std: float) -> torch.Tensor:
    rms = x.pow(2).mean().sqrt().item()
    return x * (std / rms) if rms > 1e-12 else x


def check_init(init: str) -> str:
    """``init`` if it is one of :data:`INITS`, else a ValueError naming them."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
    return init


def initial_embeddings(module: torch.nn.Module, train: sp.csr_matrix, init: str, init_std: float, seed: int) -> None:
    """Overwrite ``module.user`` / ``module.item`` weights for ``init`` ("normal": keep)."""
    if check_init(init) == "spectral":
        user, item = spectral_embeddings(train, module.user.weight.shape[1], std=init_std, seed=seed)
        with torch.no_grad():
            module.user.weight.copy_(user)
            module.item.weight.copy_(item)
