"""The contract every hybridrec recommender honours, documented once here.

A recommender is fitted on :class:`~hybridrec.data.Interactions` and then scores items for
users. Two levels of API:

* **index level** (used by the trainer and the evaluator): :meth:`Recommender.score_users`
  takes a batch of contiguous user indices and returns a ``[batch, n_items]`` float tensor
  of scores; higher is better. It never masks seen items: the caller does.
* **id level** (the public API): :meth:`score`, :meth:`recommend` take and return external
  ids, as they appear in the source files. Unknown ids raise
  :class:`~hybridrec.data.UnknownIdError`.

Persistence: :meth:`save` writes a folder with ``config.json`` (model name, settings,
vocabularies) and ``weights.safetensors``; :func:`load_model` restores it. No pickles.
Matrices are always users x items, batch first; ``recommend`` returns ``(ids, scores)``
sorted best first.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..data import Interactions, Vocabulary
from ..io import atomic_folder, save_tensors, write_json


class Recommender(ABC):
    """Base class: fit / score_users / score / recommend / save / load.

    Subclasses set :attr:`name`, implement :meth:`fit` and :meth:`score_users`, and the
    two persistence hooks :meth:`_state` and :meth:`_restore`.

    Args:
        device: torch device the model computes on (``"cpu"``, ``"cuda"``, ...).
    """

    name: ClassVar[str] = "base"
    # -- capability flags: read by compare mode, distributed training and the contract tests
    #: ``score_users`` ranks the whole catalogue (False: candidate lists only, the LLM ranker).
    full_ranking: ClassVar[bool] = True
    #: fitted on item content (``text_encoder``, ``fit(..., encoder=)``), scores new items.
    content_aware: ClassVar[bool] = False
    #: trains data-parallel under a distributed launcher (``accelerate launch``).
    distributed: ClassVar[bool] = False
    #: learns by gradient steps, with the ``train`` settings (epochs, early stopping).
    trainable: ClassVar[bool] = False
    #: scores differ between users (False for popularity and random scores).
    personalised: ClassVar[bool] = True
    #: constructor arguments that take live objects (not config values): not model settings.
    code_only: ClassVar[tuple[str, ...]] = ()

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.user_vocab: Vocabulary | None = None
        self.item_vocab: Vocabulary | None = None
        self._seen = None  # scipy CSR of training interactions, for recommend()

    # -- to implement ------------------------------------------------------------------
    @abstractmethod
    def fit(self, train: Interactions, valid: Interactions | None = None) -> "Recommender":
        """Learn from ``train``; ``valid`` (optional) drives early stopping. Returns self."""

    @abstractmethod
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for a batch of user indices: ``[len(users), n_items]``."""

    def _state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """(JSON-able settings, named tensors) that define the fitted model."""
        raise NotImplementedError

    def _restore(self, settings: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`_state`; called on an instance built from ``settings``."""
        raise NotImplementedError

    # -- shared behaviour --------------------------------------------------------------
    def _remember(self, train: Interactions) -> None:
        """Keep what the id-level API needs; subclasses call this at the start of fit."""
        self.user_vocab = train.user_vocab
        self.item_vocab = train.item_vocab
        self._seen = train.to_csr()

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    def _check_fitted(self) -> None:
        if self.item_vocab is None:
            raise RuntimeError(f"{self.name} model is not fitted: call fit(train) or load_model(path)")

    @torch.no_grad()
    def score(self, user_ids, item_ids=None) -> np.ndarray:
        """Scores for external user ids (``[n_users, n_items]``, or ``[n_users, len(item_ids)]``)."""
        self._check_fitted()
        single = isinstance(user_ids, (str, int, np.integer))
        uidx = np.atleast_1d(self.user_vocab.index(user_ids))
        s = self.score_users(torch.as_tensor(uidx, device=self.device)).float().cpu().numpy()
        if item_ids is not None:
            s = s[:, np.atleast_1d(self.item_vocab.index(item_ids))]
        return s[0] if single else s

    @torch.no_grad()
    def recommend(self, user_id, k: int = 10, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` external item ids and their scores for one user, best first.

        Items the user interacted with in training are left out unless ``exclude_seen`` is
        False. ``k`` larger than the number of rankable items is an error.
        """
        self._check_fitted()
        u = self.user_vocab.index(user_id)
        s = self.score_users(torch.as_tensor([u], device=self.device))[0].float().cpu()
        if exclude_seen and self._seen is not None:
            seen = self._seen.indices[self._seen.indptr[u] : self._seen.indptr[u + 1]]
            s[torch.as_tensor(seen, dtype=torch.long)] = -torch.inf
        n_rankable = int(torch.isfinite(s).sum())
        if k < 1 or k > n_rankable:
            raise ValueError(
                f"k={k} but user {user_id!r} has {n_rankable} rankable items "
                f"(catalogue {self.n_items}, seen items excluded={exclude_seen}); choose 1 <= k <= {n_rankable}"
            )
        top = torch.topk(s, k)
        return self.item_vocab.lookup(top.indices.numpy()), top.values.numpy()

    def to(self, device: str | torch.device) -> "Recommender":
        """Move the model's tensors to ``device``; subclasses with tensors extend this."""
        self.device = torch.device(device)
        return self

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to folder ``path`` atomically (config.json + safetensors)."""
        self._check_fitted()
        path = Path(path)
        settings, tensors = self._state()
        config = {
            "model": self.name,
            "settings": settings,
            "user_ids": self.user_vocab.to_list(),
            "item_ids": self.item_vocab.to_list(),
        }
        if self._seen is not None:
            tensors["_seen_indptr"] = torch.as_tensor(self._seen.indptr.astype(np.int64))
            tensors["_seen_indices"] = torch.as_tensor(self._seen.indices.astype(np.int64))

        def fill(folder: Path) -> None:
            save_tensors(folder / "weights.safetensors", tensors)
            write_json(folder / "config.json", config, indent=None)

        atomic_folder(path, fill)
        return path


def accepted_settings(cls) -> set[str]:
    """Keyword arguments the constructors along ``cls``'s MRO accept by name."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            params = inspect.signature(klass.__init__).parameters
            names |= {p for p, v in params.items() if p != "self" and v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)}
    return names
