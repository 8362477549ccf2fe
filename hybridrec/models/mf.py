"""Matrix factorisation trained with BPR (Rendle et al. 2009)."""

from __future__ import annotations

import torch
from torch import nn

from ..data import Interactions
from .embedding import EmbeddingRecommender
from .spectral import check_init, initial_embeddings


def add_id_embeddings(module: nn.Module, n_users: int, n_items: int, dim: int, init_std: float) -> None:
    """Give ``module`` ``user`` and ``item`` embedding tables drawn from N(0, init_std^2)."""
    module.user = nn.Embedding(n_users, dim)
    module.item = nn.Embedding(n_items, dim)
    nn.init.normal_(module.user.weight, std=init_std)
    nn.init.normal_(module.item.weight, std=init_std)


class MFModule(nn.Module):
    r"""User and item embedding tables; the score is their dot product.

    .. math:: \hat y_{ui} = e_u^\top e_i

    Args:
        n_users: number of users.
        n_items: number of items.
        dim: embedding size.
        init_std: standard deviation of the normal initialisation (default 0.1).
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64, init_std: float = 0.1):
        super().__init__()
        add_id_embeddings(self, n_users, n_items, dim, init_std)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user.weight, self.item.weight

    def initial(self, users, pos, neg):
        return self.user(users), self.item(pos), self.item(neg)


class MF(EmbeddingRecommender):
    """Matrix factorisation with BPR loss and L2 on the batch's embeddings.

    Args: see :class:`~hybridrec.models.embedding.EmbeddingRecommender`; plus
        init_std: standard deviation of the initial embeddings.
        init: ``"normal"`` (N(0, init_std^2), default) or ``"spectral"`` (a degree-weighted
            truncated SVD of the training graph at the same scale,
            :func:`~hybridrec.models.spectral.spectral_embeddings`).
    """

    name = "mf"

    def __init__(self, dim: int = 64, init_std: float = 0.1, init: str = "normal", **kwargs):
        super().__init__(dim=dim, **kwargs)
        self.init_std, self.init = float(init_std), check_init(init)

    def settings(self):
        return {**super().settings(), "init_std": self.init_std, "init": self.init}

    def build_module(self, train: Interactions) -> nn.Module:
        module = MFModule(train.n_users, train.n_items, self.dim, self.init_std)
        initial_embeddings(module, train.to_csr(), self.init, self.init_std, self.seed)
        return module
