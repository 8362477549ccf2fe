"""Uniform random scores: the floor every model must clear."""

from __future__ import annotations

import torch

from ..data import Interactions
from .base import Recommender


class RandomScores(Recommender):
    """Scores every item uniformly at random, a fresh draw per call, from a generator seeded
    at :meth:`fit` (so the same seed gives the same rankings). A saved model keeps the
    generator's state: after loading, it draws what the saved one would have drawn next."""

    name = "random"
    personalised = False

    def __init__(self, device="cpu", seed: int = 0):
        super().__init__(device)
        self.seed = int(seed)
        self._gen: torch.Generator | None = None

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "RandomScores":
        self._remember(train)
        self._gen = torch.Generator().manual_seed(self.seed)
        return self

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return torch.rand(len(users), self.n_items, generator=self._gen).to(self.device)

    def score_item_sets(self, item_sets) -> torch.Tensor:
        """A new user gets random scores too, the next draws of the generator."""
        return torch.rand(len(item_sets), self.n_items, generator=self._gen).to(self.device)

    def settings(self):
        return {"seed": self.seed}

    def _state(self):
        return self.settings(), {"generator_state": self._gen.get_state()}

    def _restore(self, settings, tensors):
        self._gen = torch.Generator()
        self._gen.set_state(tensors["generator_state"])
