"""Minimal scorers for evaluating precomputed outputs without a fitted Recommender."""

from __future__ import annotations

import torch


class EmbeddingScorer:
    """Dot-product scores from precomputed user and item embeddings.

    .. math:: s_{u,i} = \\mathbf{e}_u^\\top \\mathbf{e}_i

    Honours the index-level half of the Recommender contract (``score_users``, ``device``),
    which is all :func:`~hybridrec.eval.evaluate` needs.

    Args:
        user_emb: ``[n_users, d]`` user embeddings (tensor or array).
        item_emb: ``[n_items, d]`` item embeddings.
        device: where to score; defaults to the device of ``user_emb``.
    """

    def __init__(self, user_emb, item_emb, device: str | torch.device | None = None):
        user_emb = torch.as_tensor(user_emb)
        item_emb = torch.as_tensor(item_emb)
        if user_emb.dim() != 2 or item_emb.dim() != 2 or user_emb.shape[1] != item_emb.shape[1]:
            raise ValueError(
                f"need [n_users, d] and [n_items, d] embeddings, got {tuple(user_emb.shape)} "
                f"and {tuple(item_emb.shape)}"
            )
        floats = (torch.float32, torch.float64)
        dtype = user_emb.dtype if user_emb.dtype in floats else torch.float32
        self.device = torch.device(device) if device is not None else user_emb.device
        self.user_emb = user_emb.detach().to(self.device, dtype)
        self.item_emb = item_emb.detach().to(self.device, dtype)

    @property
    def n_users(self) -> int:
        return self.user_emb.shape[0]

    @property
    def n_items(self) -> int:
        return self.item_emb.shape[0]

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """``[len(users), n_items]`` dot products of the users' and all items' embeddings."""
        return self.user_emb[users.to(self.device)] @ self.item_emb.T

    def to(self, device: str | torch.device) -> "EmbeddingScorer":
        self.device = torch.device(device)
        self.user_emb = self.user_emb.to(self.device)
        self.item_emb = self.item_emb.to(self.device)
        return self
