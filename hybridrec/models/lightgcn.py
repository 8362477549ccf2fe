"""LightGCN (He et al. 2020, https://arxiv.org/abs/2002.02126)."""

from __future__ import annotations

import torch
from torch import nn

from ..data import Interactions
from ..graph import BipartiteGraph
from .embedding import EmbeddingRecommender
from .mf import add_id_embeddings
from .spectral import check_init, initial_embeddings


class LightGCNModule(nn.Module):
    r"""Normalised neighbour averaging with no weights and no nonlinearity.

    .. math::
        e_u^{(l+1)} = \sum_{i \in N(u)} \frac{e_i^{(l)}}{\sqrt{|N(u)|}\sqrt{|N(i)|}}, \qquad
        e_i^{(l+1)} = \sum_{u \in N(i)} \frac{e_u^{(l)}}{\sqrt{|N(i)|}\sqrt{|N(u)|}}, \qquad
        e = \sum_{l=0}^{L} \alpha_l e^{(l)}

    Args:
        graph: the normalised user-item graph.
        dim: embedding size (default 64).
        n_layers: propagation layers ``L`` (default 3).
        alphas: layer weights ``alpha_0..alpha_L``; default ``1 / (L + 1)`` each.
        init_std: standard deviation of the normal initial embeddings (default 0.1).
    """

    def __init__(self, graph: BipartiteGraph, dim: int = 64, n_layers: int = 3,
                 alphas: list[float] | None = None, init_std: float = 0.1):
        super().__init__()
        self.graph = graph
        add_id_embeddings(self, graph.n_users, graph.n_items, dim, init_std)
        alphas = [1.0 / (n_layers + 1)] * (n_layers + 1) if alphas is None else list(alphas)
        if len(alphas) != n_layers + 1:
            raise ValueError(f"alphas needs n_layers + 1 = {n_layers + 1} weights, got {len(alphas)}")
        self.n_layers = n_layers
        self.alphas = alphas

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        eu, ei = self.user.weight, self.item.weight
        out_u, out_i = self.alphas[0] * eu, self.alphas[0] * ei
        for a in self.alphas[1:]:
            eu, ei = self.graph.propagate(eu, ei)
            out_u = torch.add(out_u, eu, alpha=a)  # one fused kernel instead of mul + add
            out_i = torch.add(out_i, ei, alpha=a)
        return out_u, out_i

    def initial(self, users, pos, neg):
        return self.user(users), self.item(pos), self.item(neg)


class LightGCN(EmbeddingRecommender):
    """LightGCN trained with BPR, L2 on the layer-0 embeddings of the batch.

    Args: see :class:`~hybridrec.models.embedding.EmbeddingRecommender`; plus
        n_layers: propagation layers (default 3).
        alphas: layer weights (default uniform ``1 / (n_layers + 1)``).
        init_std: standard deviation of the initial embeddings.
        init: ``"normal"`` (default) or ``"spectral"`` layer-0 embeddings
            (:func:`~hybridrec.models.spectral.spectral_embeddings`).
    """

    name = "lightgcn"

    def __init__(self, dim: int = 64, n_layers: int = 3, alphas: list[float] | None = None,
                 init_std: float = 0.1, init: str = "normal", **kwargs):
        super().__init__(dim=dim, **kwargs)
        self.n_layers, self.alphas, self.init_std = int(n_layers), alphas, float(init_std)
        self.init = check_init(init)

    def settings(self):
        return {**super().settings(), "n_layers": self.n_layers, "alphas": self.alphas,
                "init_std": self.init_std, "init": self.init}

    def build_module(self, train: Interactions) -> nn.Module:
        csr = train.to_csr()
        module = LightGCNModule(BipartiteGraph(csr, device=self.device), self.dim, self.n_layers, self.alphas,
                                self.init_std)
        initial_embeddings(module, csr, self.init, self.init_std, self.seed)
        return module
