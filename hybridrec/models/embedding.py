"""Recommenders that score by a dot product of learned user and item embeddings."""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..data import Interactions
from ..train import TrainHistory, train_bpr
from .base import Recommender
from .foldin import FoldIn, fold_in_bpr


class EmbeddingRecommender(Recommender):
    """Base of MF and the graph models: an ``nn.Module`` trained with BPR.

    Subclasses implement :meth:`build_module`, returning a module whose ``forward()``
    gives the final ``(user_emb, item_emb)`` tables and whose ``initial(u, i, j)`` gives
    the layer-0 embeddings the L2 penalty applies to. After :meth:`fit`, the final tables
    are kept, so scoring costs one matrix product per batch of users.

    A new user known by liked items is folded in by fitting a user vector against the
    fixed final item vectors with BPR (:func:`~hybridrec.models.foldin.fold_in_bpr`, with
    the settings :attr:`fold_in`); similar items are the cosine of the final item vectors.

    Args:
        dim: embedding size.
        train: BPR training settings (:class:`~hybridrec.config.TrainConfig` or a dict).
        seed: fixes initialisation and sampling.
        device: torch device.
        eval_batch_size: users per batch in validation (``None``: the evaluator chooses).
    """

    trainable = True
    distributed = True
    #: settings of the BPR fold-in of new users (:meth:`score_item_sets`); assign a
    #: :class:`~hybridrec.models.foldin.FoldIn` to an instance to change them (not saved).
    fold_in: FoldIn = FoldIn()

    def __init__(
        self,
        dim: int = 64,
        train: TrainConfig | dict | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        eval_batch_size: int | None = None,
    ):
        super().__init__(device)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        self.dim = int(dim)
        if isinstance(train, dict) or train is None:
            train = TrainConfig(**(train or {}))
        self.train_config = train
        self.seed = int(seed)
        self.eval_batch_size = eval_batch_size
        self.module: nn.Module | None = None
        self.history: TrainHistory | None = None
        self._user_emb: torch.Tensor | None = None
        self._item_emb: torch.Tensor | None = None

    @abstractmethod
    def build_module(self, train: Interactions) -> nn.Module:
        """The trainable module for this training data (called by :meth:`fit`)."""

    def settings(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this model (saved with it)."""
        return {"dim": self.dim, "seed": self.seed, "train": dataclasses.asdict(self.train_config)}

    def fit(self, train: Interactions, valid: Interactions | None = None, *, dist=None) -> "EmbeddingRecommender":
        """Train with BPR; ``dist`` (:func:`hybridrec.train.distributed.context`, passed by a
        run started with ``accelerate launch``) trains data-parallel: one share of every
        batch per process, the same update as one process on the whole batch."""
        self._remember(train)
        torch.manual_seed(self.seed)
        self.module = self.build_module(train).to(self.device)
        self.history = train_bpr(
            self.module, train, valid, self.train_config,
            seed=self.seed, device=self.device, eval_batch_size=self.eval_batch_size, dist=dist,
        )
        self._cache_embeddings()
        return self

    @torch.no_grad()
    def _cache_embeddings(self) -> None:
        self.module.eval()
        users, items = self.module()
        self._user_emb, self._item_emb = users.detach(), items.detach()

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user_emb [n_users, d'], item_emb [n_items, d'])`` used for scoring."""
        self._check_fitted()
        return self._user_emb, self._item_emb

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self._user_emb[users.to(self._user_emb.device)] @ self._item_emb.T

    def score_item_sets(self, item_sets) -> torch.Tensor:
        """A user vector fitted by BPR against the fixed final item vectors (:attr:`fold_in`)."""
        return fold_in_bpr(self._item_emb, item_sets, self.fold_in) @ self._item_emb.T

    def item_similarities(self, items: torch.Tensor) -> torch.Tensor:
        """Cosine of the final item vectors."""
        v = F.normalize(self._item_emb.float(), dim=1)
        return v[items.to(v.device)] @ v.T

    def to(self, device) -> "EmbeddingRecommender":
        super().to(device)
        if self.module is not None:
            self.module.to(self.device)
        if self._user_emb is not None:
            self._user_emb, self._item_emb = self._user_emb.to(self.device), self._item_emb.to(self.device)
        return self

    def _state(self):
        return self.settings(), {"user_emb": self._user_emb, "item_emb": self._item_emb}

    def _restore(self, settings, tensors):
        self._user_emb = tensors["user_emb"].to(self.device)
        self._item_emb = tensors["item_emb"].to(self.device)
