"""Content-only recommender: users are the mean text embedding of what they interacted with."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ..data import Interactions
from ..text.item_text import DEFAULT_TEMPLATE
from .base import Recommender, item_sets_csr
from .content_base import ContentAware

_DAY = 86400.0


def recency_weights(train: Interactions, half_life_days: float | None) -> np.ndarray:
    r"""Weight of each training interaction in its user's profile.

    .. math:: w_{ui} = 2^{-(t_u^{last} - t_{ui}) / h}

    with :math:`t_u^{last}` the user's latest training timestamp and ``h`` the half-life
    in days; all ones when ``half_life_days`` is None.

    Raises:
        ValueError: a half-life is set but the data has no timestamps, or it is not > 0.
    """
    if half_life_days is None:
        return np.ones(len(train), dtype=np.float64)
    if not half_life_days > 0:
        raise ValueError(f"recency_half_life_days must be > 0 (or None for a plain mean), got {half_life_days}")
    if train.timestamps is None:
        raise ValueError(f"recency_half_life_days needs timestamps, and data set {train.name!r} has none; "
                         "set recency_half_life_days to None")
    last = np.full(train.n_users, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, train.users, train.timestamps)
    age_days = (last[train.users] - train.timestamps) / _DAY
    return np.exp2(-age_days / float(half_life_days))


def user_profiles(train: Interactions, item_vectors: torch.Tensor, half_life_days: float | None = None) -> torch.Tensor:
    r"""Each user's weighted mean of the vectors of their training items.

    .. math:: p_u = \frac{\sum_{i} w_{ui}\, v_i}{\sum_i w_{ui}}

    summing over training interactions (an item met twice counts twice); weights from
    :func:`recency_weights`. Users with no training interaction get a zero profile.

    Returns:
        ``float32 [n_users, d]`` on the device of ``item_vectors``.
    """
    w = recency_weights(train, half_life_days)
    m = sp.csr_matrix((w, (train.users, train.items)), shape=(train.n_users, train.n_items))
    return weighted_row_means(m, item_vectors)


def weighted_row_means(m: sp.csr_matrix, item_vectors: torch.Tensor) -> torch.Tensor:
    """Each row's weighted mean of ``item_vectors`` (weights: the row of ``m``, users x
    items); zero for empty rows. ``float32 [n_rows, d]`` on ``item_vectors``' device."""
    total = np.asarray(m.sum(axis=1), dtype=np.float64).ravel()
    m = sp.diags(np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)) @ m
    p = m.astype(np.float32) @ item_vectors.detach().float().cpu().numpy()
    return torch.as_tensor(np.asarray(p), dtype=torch.float32, device=item_vectors.device)


class ContentRecommender(ContentAware, Recommender):
    r"""Scores items by the similarity of their text to the user's profile.

    With item content embeddings :math:`c_i` (cosine: :math:`v_i = c_i / \lVert c_i
    \rVert`; dot: :math:`v_i = c_i`) and the profile :math:`p_u` of :func:`user_profiles`,

    .. math::
        s_{ui} = \frac{p_u^\top v_i}{\lVert p_u \rVert} \ \text{(cosine)}, \qquad
        s_{ui} = p_u^\top v_i \ \text{(dot)}

    Nothing is trained: items with no interactions (cold or new) score like any other.
    Users with no training interactions score 0 everywhere.

    New users: one known by liked items gets the profile of those items, exactly as a
    training user with them (a plain mean: the list has no timestamps); one who describes
    their taste in words (:meth:`recommend_for_text`) is profiled as if their only item had
    that text, so :math:`s_{ui} = \cos(q, c_i)` (cosine) for the encoded text :math:`q`.
    Similar items: the cosine of the items' content embeddings.

    Args:
        text_model: sentence-transformers model name or folder (default all-MiniLM-L6-v2), or
            ``"llm"`` / ``"llm:<hub name or folder>"`` for a causal LM's mean hidden states
            (:class:`~hybridrec.text.LLMItemEncoder`; ``"llm"`` is the offline SmolLM2-135M).
        text_template: how item strings are built (:mod:`hybridrec.text.item_text`).
        recency_half_life_days: weigh a user's recent items more, halving weight every
            this many days before their latest interaction; None for a plain mean.
        similarity: ``"cosine"`` (default) or ``"dot"``.
        on_empty: items with empty text: ``"error"`` or ``"zero"`` (zero embedding).
        text_batch_size: texts per forward pass of the encoder.
        device: torch device.
    """

    name = "content"
    text_queries = True

    def __init__(self, text_model: str | None = None, text_template: str = DEFAULT_TEMPLATE,
                 recency_half_life_days: float | None = None, similarity: str = "cosine",
                 on_empty: str = "error", text_batch_size: int = 64, device="cpu"):
        super().__init__(device)
        if similarity not in ("cosine", "dot"):
            raise ValueError(f"similarity must be 'cosine' or 'dot', got {similarity!r}")
        if recency_half_life_days is not None and not float(recency_half_life_days) > 0:
            raise ValueError(f"recency_half_life_days must be > 0 or None, got {recency_half_life_days}")
        self._init_text(text_model, text_template, on_empty, text_batch_size)
        self.recency_half_life_days = None if recency_half_life_days is None else float(recency_half_life_days)
        self.similarity = similarity
        self._profiles: torch.Tensor | None = None
        self._user_vecs = self._item_vecs = None

    def settings(self):
        return {**self._text_settings(), "recency_half_life_days": self.recency_half_life_days,
                "similarity": self.similarity}

    def fit(self, train: Interactions, valid: Interactions | None = None, *, item_embeddings=None,
            encoder=None) -> "ContentRecommender":
        """Embed the catalogue's text and build user profiles (``valid`` is not used).

        Args:
            item_embeddings: precomputed content embeddings ``[n_items, d]`` (skips encoding).
            encoder: encoder object for the item strings; default :meth:`text_encoder`.
        """
        self._remember(train)
        self._content = self._content_for(train, item_embeddings, encoder).to(self.device)
        self._profiles = user_profiles(train, self._item_vectors(self._content), self.recency_half_life_days)
        self._prepare()
        return self

    def _prepare(self) -> None:
        self._item_vecs = self._item_vectors(self._content)
        self._user_vecs = self._profile_vectors(self._profiles)

    def _profile_vectors(self, profiles: torch.Tensor) -> torch.Tensor:
        """Scoring vectors of users with these profiles :math:`p_u`."""
        return F.normalize(profiles, dim=1) if self.similarity == "cosine" else profiles

    def _item_vectors(self, content: torch.Tensor) -> torch.Tensor:
        return F.normalize(content, dim=1) if self.similarity == "cosine" else content

    def _user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self._user_vecs[users.to(self._user_vecs.device)]

    @property
    def profiles(self) -> torch.Tensor:
        """User profiles :math:`p_u`, ``[n_users, d]`` (unnormalised)."""
        self._check_fitted()
        return self._profiles

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self._user_vectors(users) @ self._item_vecs.T

    def score_item_sets(self, item_sets) -> torch.Tensor:
        """A new user's profile is the mean vector of their liked items (a repeat counts twice)."""
        profiles = weighted_row_means(item_sets_csr(item_sets, self.n_items, counts=True), self._item_vecs)
        return self._profile_vectors(profiles) @ self._item_vecs.T

    def score_texts(self, texts, encoder=None) -> torch.Tensor:
        """A text is profiled as an item with that text would be."""
        return self._profile_vectors(self._item_vectors(self._encode_texts(texts, encoder))) @ self._item_vecs.T

    def item_similarities(self, items: torch.Tensor) -> torch.Tensor:
        """Cosine of the items' content embeddings."""
        c = F.normalize(self._content.float(), dim=1)
        return c[items.to(c.device)] @ c.T

    def to(self, device) -> "ContentRecommender":
        super().to(device)
        if self._content is not None:
            self._content, self._profiles = self._content.to(self.device), self._profiles.to(self.device)
            self._prepare()
        return self

    def _state(self):
        return self.settings(), {"item_content": self._content, "user_profiles": self._profiles}

    def _restore(self, settings, tensors):
        self._content = tensors["item_content"].to(self.device)
        self._profiles = tensors["user_profiles"].to(self.device)
        self._prepare()
