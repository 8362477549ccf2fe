"""Negative samplers for BPR training, vectorised over the whole batch."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


class UniformNegativeSampler:
    """Draws, for each (user, positive) pair, an item the user never interacted with.

    Items are drawn uniformly; draws that hit an observed positive are redrawn, all of a
    batch's rejected draws together, until none is left. Membership is a binary search in
    the sorted keys ``user * n_items + item`` of the training matrix.

    Args:
        train: users x items CSR matrix of training interactions.
        device: where sampled tensors live.
        max_rounds: redraw rounds before giving up (only a user who interacted with
            nearly every item can need many).
    """

    name = "uniform"

    def __init__(self, train: sp.csr_matrix, device: str | torch.device = "cpu", max_rounds: int = 100):
        coo = train.tocoo()
        self.n_items = train.shape[1]
        keys = coo.row.astype(np.int64) * self.n_items + coo.col.astype(np.int64)
        self.device = torch.device(device)
        self.keys = torch.as_tensor(np.unique(keys), device=self.device)
        self.max_rounds = max_rounds
        full = np.flatnonzero(np.diff(train.indptr) >= self.n_items)
        if len(full):
            raise ValueError(
                f"user index {int(full[0])} interacted with every item: no negative can be sampled; "
                "remove such users from the training data"
            )

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Whether each (user, item) pair is an observed training interaction."""
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.keys, keys).clamp_(max=len(self.keys) - 1)
        return self.keys[pos] == keys

    def sample(self, users: torch.Tensor, generator: torch.Generator, **_model_state) -> torch.Tensor:
        """One negative item per entry of ``users`` (any shape), ``int64`` like ``users``.

        Keyword arguments (the current embeddings, passed by the BPR step) are unused here.
        """
        flat = users.reshape(-1)
        neg = torch.randint(self.n_items, flat.shape, generator=generator, device=self.device)
        bad = self.is_positive(flat, neg)
        for _ in range(self.max_rounds):
            n_bad = int(bad.sum())
            if n_bad == 0:
                return neg.view(users.shape)
            idx = bad.nonzero(as_tuple=True)[0]
            neg[idx] = torch.randint(self.n_items, (n_bad,), generator=generator, device=self.device)
            bad[idx] = self.is_positive(flat[idx], neg[idx])
        raise RuntimeError("negative sampling did not converge; some users interact with almost every item")


class HardNegativeSampler(UniformNegativeSampler):
    """For each positive, the highest-scoring item of a uniform pool of non-interacted items.

    Scores are the current model's dot products ``e_u . e_j`` (dynamic negative sampling,
    Zhang et al. 2013): of ``pool_size`` uniform negatives, the one the model ranks highest
    is the most informative for BPR.

    Args:
        pool_size: candidates drawn per positive (1 reduces to uniform sampling).
    """

    name = "hard"

    def __init__(self, train: sp.csr_matrix, device="cpu", max_rounds: int = 100, pool_size: int = 10):
        super().__init__(train, device=device, max_rounds=max_rounds)
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self.pool_size = int(pool_size)

    def sample(self, users, generator, user_emb=None, item_emb=None, **_):
        if user_emb is None or item_emb is None:
            raise ValueError("hard negative sampling needs the current user and item embeddings")
        pool = super().sample(users.unsqueeze(1).expand(-1, self.pool_size), generator)
        scores = torch.einsum("bd,bkd->bk", user_emb[users], item_emb[pool])
        return pool.gather(1, scores.argmax(1, keepdim=True)).squeeze(1)


SAMPLERS = {"uniform": UniformNegativeSampler, "hard": HardNegativeSampler}


def build_sampler(name: str, train: sp.csr_matrix, device="cpu", **kwargs):
    """Sampler by registry name; an unknown name lists the valid ones."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown negative sampler {name!r}; valid: {sorted(SAMPLERS)}")
    return SAMPLERS[name](train, device=device, **kwargs)
