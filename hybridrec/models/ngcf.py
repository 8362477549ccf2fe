"""NGCF (Wang et al. 2019, https://arxiv.org/abs/1905.08108)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Interactions
from ..graph import BipartiteGraph
from .embedding import EmbeddingRecommender
from .mf import add_id_embeddings
from .spectral import check_init, initial_embeddings


class NGCFModule(nn.Module):
    r"""Neural graph collaborative filtering message passing.

    With :math:`p_{ui} = 1/\sqrt{|N(u)||N(i)|}` and the self-connection :math:`W_1 e_u`:

    .. math::
        e_u^{(l+1)} = \mathrm{LeakyReLU}\Big(W_1 e_u^{(l)} + \sum_{i \in N(u)} p_{ui}
            \big(W_1 e_i^{(l)} + W_2 (e_i^{(l)} \odot e_u^{(l)})\big)\Big)

    (items symmetrically). Each layer's output is L2-normalised, message dropout applies in
    training, and the final embedding concatenates layers ``0..L`` (size ``dim * (L+1)``).

    Args:
        graph: the normalised user-item graph.
        dim: embedding and layer size (default 64).
        n_layers: message-passing layers (default 3).
        dropout: message dropout probability (default 0.1).
        init_std: standard deviation of the initial embeddings (default 0.1; Xavier for W).
    """

    def __init__(self, graph: BipartiteGraph, dim: int = 64, n_layers: int = 3,
                 dropout: float = 0.1, init_std: float = 0.1):
        super().__init__()
        self.graph = graph
        add_id_embeddings(self, graph.n_users, graph.n_items, dim, init_std)
        self.w1 = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))
        self.w2 = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))
        for lin in [*self.w1, *self.w2]:
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.dropout = dropout

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        eu, ei = self.user.weight, self.item.weight
        outs_u, outs_i = [eu], [ei]
        for w1, w2 in zip(self.w1, self.w2):
            side_u, side_i = self.graph.propagate(eu, ei)  # sum_i p_ui e_i, sum_u p_ui e_u
            eu = F.leaky_relu(w1(side_u + eu) + w2(side_u * eu), 0.2)
            ei = F.leaky_relu(w1(side_i + ei) + w2(side_i * ei), 0.2)
            eu = F.dropout(eu, self.dropout, self.training)
            ei = F.dropout(ei, self.dropout, self.training)
            outs_u.append(F.normalize(eu, dim=1))
            outs_i.append(F.normalize(ei, dim=1))
        return torch.cat(outs_u, 1), torch.cat(outs_i, 1)

    def initial(self, users, pos, neg):
        return self.user(users), self.item(pos), self.item(neg)


class NGCF(EmbeddingRecommender):
    """NGCF trained with BPR, L2 on the layer-0 embeddings of the batch.

    Args: see :class:`~hybridrec.models.embedding.EmbeddingRecommender`; plus
        n_layers: message-passing layers (default 3).
        dropout: message dropout (default 0.1).
        init_std: standard deviation of the initial embeddings.
        init: ``"normal"`` (default) or ``"spectral"`` layer-0 embeddings
            (:func:`~hybridrec.models.spectral.spectral_embeddings`).
    """

    name = "ngcf"

    def __init__(self, dim: int = 64, n_layers: int = 3, dropout: float = 0.1, init_std: float = 0.1,
                 init: str = "normal", **kwargs):
        super().__init__(dim=dim, **kwargs)
        self.n_layers, self.dropout, self.init_std = int(n_layers), float(dropout), float(init_std)
        self.init = check_init(init)

    def settings(self):
        return {**super().settings(), "n_layers": self.n_layers, "dropout": self.dropout,
                "init_std": self.init_std, "init": self.init}

    def build_module(self, train: Interactions) -> nn.Module:
        csr = train.to_csr()
        module = NGCFModule(BipartiteGraph(csr, device=self.device), self.dim, self.n_layers, self.dropout,
                            self.init_std)
        initial_embeddings(module, csr, self.init, self.init_std, self.seed)
        return module
