"""The contract every hybridrec recommender honours, documented once here.

A recommender is fitted on :class:`~hybridrec.data.Interactions` and then scores items for
users. Two levels of API:

* **index level** (used by the trainer and the evaluator): :meth:`Recommender.score_users`
  takes a batch of contiguous user indices and returns a ``[batch, n_items]`` float tensor
  of scores; higher is better. It never masks seen items: the caller does.
* **id level** (the public API): :meth:`score`, :meth:`recommend` take and return external
  ids, as they appear in the source files. Unknown ids raise
  :class:`~hybridrec.data.UnknownIdError`. ``recommend`` takes one user (``(ids, scores)``)
  or many (a DataFrame, ranked in batches). New users: :meth:`recommend_for_items` folds a
  user known by a few liked items in without retraining (each model through
  :meth:`score_item_sets`), :meth:`recommend_for_text` scores a free-text description
  (content-aware models, :meth:`score_texts`); :meth:`similar_items` gives an item's
  neighbours (:meth:`item_similarities`).

Persistence: :meth:`save` writes a folder with ``config.json`` (model name, settings,
vocabularies), ``weights.safetensors`` and ``versions.json`` (package versions, device, source
commit); :func:`load_model` restores it. No pickles.
Matrices are always users x items, batch first; ``recommend`` returns ``(ids, scores)``
sorted best first.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ..data import Interactions, UnknownIdError, Vocabulary
from ..io import atomic_folder, save_tensors, write_json
from ..support.versions import write_versions


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
    #: scores users described by free text (:meth:`recommend_for_text`).
    text_queries: ClassVar[bool] = False
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

    def _user_indices(self, users) -> tuple[bool, np.ndarray]:
        """``(one id?, user indices)``; many ids with unknown ones: every unknown one listed."""
        if is_one_id(users):
            return True, np.atleast_1d(self.user_vocab.index(users))
        return False, known_indices(self.user_vocab, list(users), "score a new user with recommend_for_items "
                                    "(the items they like) or, with a content-aware model, recommend_for_text")

    @torch.no_grad()
    def recommend(self, users, k: int = 10, exclude_seen: bool = True, *, titles=None):
        """Top-``k`` items for known users, best first.

        Args:
            users: one external user id: returns ``(item_ids, scores)``. Many (a list, array
                or Series of ids): returns a DataFrame with columns ``user_id, rank`` (1..k)
                ``, item_id, score``, the users in the order given, scored in batches of
                :data:`RANK_BATCH` users per :meth:`score_users` call.
            k: items per user.
            exclude_seen: leave out the items the user interacted with in training.
            titles: many users only: ``{item_id: title}`` adds a ``title`` column.

        Raises:
            UnknownIdError: an unknown user id (with many, all of them are listed).
            ValueError: ``k`` < 1 or larger than a user's number of rankable items.
        """
        return self._recommend_known(users, k, exclude_seen, titles)

    def _recommend_known(self, users, k, exclude_seen, titles, extra=None):
        """:meth:`recommend`; ``extra = (scores_of(user index tensor) -> [B, m], ids)`` ranks
        ``m`` more items (new items) with the catalogue."""
        self._check_fitted()
        one, rows = self._user_indices(users)
        if one:
            no_titles(titles)
        ids = self.item_vocab.ids if extra is None else np.concatenate([self.item_vocab.ids, extra[1]])
        where = f"catalogue {self.n_items}" if extra is None else f"{self.n_items} known, {len(extra[1])} new"

        def score(pos):
            u = torch.as_tensor(rows[pos], device=self.device)
            s = self.score_users(u).float().cpu()
            return s if extra is None else torch.cat([s, extra[0](u).float().cpu()], 1)

        def too_few(r, n):
            name = users if one else self.user_vocab.ids[rows[r]]
            return (f"k={k} but user {name!r} has {n} rankable items ({where}, seen items excluded={exclude_seen}); "
                    f"choose 1 <= k <= {n}")

        exclude = self._seen[rows] if exclude_seen and self._seen is not None else None
        idx, val = rank_rows(score, len(rows), exclude, k, too_few)
        if one:
            return ids[idx[0]], val[0]
        return ranked_frame(self.user_vocab.ids[rows], idx, val, ids, titles)

    @torch.no_grad()
    def recommend_for_items(self, liked, k: int = 10, exclude_liked: bool = True, *, titles=None):
        """Top-``k`` items for a new user known only by items they like, without retraining
        and without changing the model (:meth:`score_item_sets` folds them in).

        Args:
            liked: item ids: returns ``(item_ids, scores)``. Many new users, a list of id lists
                or a mapping ``{name: item ids}``: returns :meth:`recommend`'s DataFrame, with
                ``user_id`` the name (or the position in the list).
            k: items per user.
            exclude_liked: leave the liked items out of the list.
            titles: many users only: ``{item_id: title}`` adds a ``title`` column.

        Raises:
            UnknownIdError: unknown item ids (all of them are listed).
            ValueError: no liked items; ``k`` out of range.
            NotImplementedError: the model cannot fold a user in.
        """
        self._check_fitted()
        one, names, queries = parse_queries(liked, "liked")
        if one:
            no_titles(titles)
        sets = []
        for name, items in zip(names, queries):
            items = [items] if is_one_id(items) else list(items)
            who = "" if one else f" of new user {name!r}"
            if not items:
                raise ValueError(f"no liked items{who}: give at least one item id")
            sets.append(known_indices(self.item_vocab, items, where=f"in the liked items{who}"))
        exclude = item_sets_csr(sets, self.n_items) if exclude_liked else None

        def too_few(r, n):
            who = "the new user" if one else f"new user {names[r]!r}"
            return (f"k={k} but {who} has {n} rankable items (catalogue {self.n_items}, liked items "
                    f"excluded={exclude_liked}); choose 1 <= k <= {n}")

        idx, val = rank_rows(lambda pos: self.score_item_sets([sets[p] for p in pos]), len(sets), exclude, k, too_few)
        if one:
            return self.item_vocab.ids[idx[0]], val[0]
        return ranked_frame(names, idx, val, self.item_vocab.ids, titles)

    @torch.no_grad()
    def recommend_for_text(self, text, k: int = 10, *, encoder=None, titles=None):
        """Top-``k`` items for a new user who describes what they like in free text
        (onboarding), scored through the text side of a content-aware model
        (:meth:`score_texts`; models with :attr:`text_queries`).

        Args:
            text: a string: returns ``(item_ids, scores)``. Many, a list of strings or a mapping
                ``{name: text}``: returns :meth:`recommend`'s DataFrame.
            k: items per user.
            encoder: the text encoder (default: the model's own, loaded on each call; pass
                one to reuse it).
            titles: many users only: ``{item_id: title}`` adds a ``title`` column.

        Raises:
            ValueError: an empty or blank text; ``k`` out of range.
            NotImplementedError: the model does not score free text (the message lists those that do).
        """
        self._check_fitted()
        one, names, texts = parse_queries(text, "text")
        if one:
            no_titles(titles)
        for name, t in zip(names, texts):
            if not isinstance(t, str) or not t.strip():
                who = "" if one else f" of new user {name!r}"
                raise ValueError(f"the text{who} is {'empty' if isinstance(t, str) else type(t).__name__}: "
                                 "describe what the user likes in words")

        def too_few(r, n):
            return f"k={k} but the catalogue has {n} rankable items; choose 1 <= k <= {n}"

        idx, val = rank_rows(lambda pos: self.score_texts([texts[p] for p in pos], encoder), len(texts), None, k,
                             too_few)
        if one:
            return self.item_vocab.ids[idx[0]], val[0]
        return ranked_frame(names, idx, val, self.item_vocab.ids, titles)

    @torch.no_grad()
    def similar_items(self, item_id, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to ``item_id`` (itself left out), best first:
        ``(item_ids, similarities)``; the similarity is the model's :meth:`item_similarities`.

        Raises:
            UnknownIdError: an unknown item id.
            ValueError: ``k`` < 1 or larger than the number of other items.
            NotImplementedError: the model has no item-to-item similarity.
        """
        self._check_fitted()
        i = self.item_vocab.index(item_id)

        def too_few(r, n):
            return f"k={k} but item {item_id!r} has {n} other items to rank; choose 1 <= k <= {n}"

        idx, val = rank_rows(lambda pos: self.item_similarities(torch.as_tensor([i], device=self.device)), 1,
                             item_sets_csr([np.array([i])], self.n_items), k, too_few)
        return self.item_vocab.ids[idx[0]], val[0]

    # -- optional hooks of the new-user and item-to-item API --------------------------------
    def score_item_sets(self, item_sets: list[np.ndarray]) -> torch.Tensor:
        """Scores of every item for new users known only by the items they like:
        ``[len(item_sets), n_items]``, each set an array of item indices (a repeat counts
        twice, as a repeated training interaction does).

        Each model folds a user in its own way, without retraining and without changing
        itself (see each model's override); the default says the model cannot.
        """
        raise NotImplementedError(f"the {self.name} model cannot fold in a new user from the items they like")

    def score_texts(self, texts: list[str], encoder=None) -> torch.Tensor:
        """Scores of every item for new users described by free text, ``[len(texts), n_items]``
        (models with :attr:`text_queries`); the default says which models can."""
        from .registry import models_with

        raise NotImplementedError(f"the {self.name} model cannot score free text; recommend_for_text needs one "
                                  f"of: {', '.join(models_with(text_queries=True))}")

    def item_similarities(self, items: torch.Tensor) -> torch.Tensor:
        """Similarity of each of a batch of item indices to every item, ``[len(items), n_items]``;
        the default says the model has none."""
        raise NotImplementedError(f"the {self.name} model has no item-to-item similarity (its scores do not "
                                  "describe items by what they have in common)")

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
            write_versions(folder, str(self.device))  # what produced it: versions, device, commit

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


# -- ranking many rows at once (the id-level API) -----------------------------------------
#: Rows (users, new users or texts) scored per call when ranking many at once.
RANK_BATCH = 1024


def is_one_id(x) -> bool:
    """Whether ``x`` is one external id (a string or an integer) rather than many."""
    return isinstance(x, (str, int, np.integer))


def known_indices(vocab: Vocabulary, ids: list, hint: str = "", where: str = "") -> np.ndarray:
    """Indices of ``ids`` in ``vocab``; unknown ones raise :class:`~hybridrec.data.UnknownIdError`
    listing every one of them (the first ten and a count), ``where`` they were and a ``hint``."""
    idx = vocab.index(ids, missing="neg")
    if (idx < 0).any():
        bad = list(dict.fromkeys(str(ids[j]) for j in np.flatnonzero(idx < 0)))
        shown = ", ".join(repr(b) for b in bad[:10]) + (f", ... ({len(bad)} in all)" if len(bad) > 10 else "")
        raise UnknownIdError(f"unknown {vocab.kind} id{'s' if len(bad) > 1 else ''} {shown}{' ' + where if where else ''}: not in the "
                             f"training data ({len(vocab)} {vocab.kind}s known){'; ' + hint if hint else ''}")
    return idx


def parse_queries(queries, what: str) -> tuple[bool, list, list]:
    """``(one?, names, queries)`` of a new-user request: one query (an id list or id for
    ``what="liked"``, a string for ``"text"``), a list of them (named by position), or a
    mapping ``{name: query}``."""
    if isinstance(queries, Mapping):
        return False, list(queries), list(queries.values())
    if is_one_id(queries) or (what == "text" and not hasattr(queries, "__iter__")):
        return True, [None], [queries]
    items = list(queries)
    if what == "text":
        if not items:
            raise ValueError("no text given: pass a string, a list of strings or {name: text}")
        return False, list(range(len(items))), items
    lists = [not is_one_id(x) and hasattr(x, "__iter__") for x in items]
    if items and all(lists):
        return False, list(range(len(items))), items
    if any(lists):
        raise ValueError("liked mixes item ids and lists of them: pass one user's item ids, or one list per user")
    return True, [None], [items]


def rank_rows(score, n: int, exclude: sp.csr_matrix | None, k: int, too_few) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` ``(indices, scores)``, each ``[n, k]``, of ``n`` rows scored in batches.

    Args:
        score: ``score(positions)`` gives the scores ``[len(positions), n_columns]`` of a
            batch of at most :data:`RANK_BATCH` row positions.
        exclude: CSR whose row ``r`` lists the columns row ``r`` may not return (or None);
            masked in one vectorised assignment per batch.
        k: items per row.
        too_few: ``too_few(position, n_rankable)``: the message when ``k`` is out of range.
    """
    if n == 0 and k < 1:
        raise ValueError(f"k={k}: choose k >= 1")
    idx, val = [np.zeros((0, max(k, 0)), dtype=np.int64)], [np.zeros((0, max(k, 0)), dtype=np.float32)]
    for start in range(0, n, RANK_BATCH):
        pos = np.arange(start, min(start + RANK_BATCH, n))
        s = score(pos).float().cpu().clone()  # a copy: a model may hand out its own tensor (popularity)
        if exclude is not None:
            part = exclude[pos[0]:pos[-1] + 1]
            rows = np.repeat(np.arange(len(pos)), np.diff(part.indptr))
            s[torch.as_tensor(rows), torch.as_tensor(part.indices, dtype=torch.long)] = -torch.inf
        rankable = torch.isfinite(s).sum(1)
        short = torch.nonzero(rankable < max(k, 1))
        if k < 1 or len(short):
            r = int(short[0]) if len(short) else 0
            raise ValueError(too_few(int(pos[r]), int(rankable[r])))
        top = torch.topk(s, k, dim=1)
        idx.append(top.indices.numpy())
        val.append(top.values.numpy())
    return np.concatenate(idx), np.concatenate(val)


def item_sets_csr(sets: list[np.ndarray], n_items: int, counts: bool = False) -> sp.csr_matrix:
    """``float32 [len(sets), n_items]`` CSR of item index sets: 1 per item (``counts``: how
    often the set holds it, as repeated training interactions count)."""
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.concatenate([np.asarray(s, dtype=np.int64) for s in sets]) if sets else np.zeros(0, dtype=np.int64)
    m = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(sets), n_items))
    m.sum_duplicates()
    if not counts:
        m.data[:] = 1.0
    return m


def ranked_frame(names, idx: np.ndarray, val: np.ndarray, item_ids: np.ndarray, titles=None) -> pd.DataFrame:
    """The long table of ranked lists: ``user_id, rank, item_id, score`` (``title`` after
    ``item_id`` with ``titles``, a mapping from item id to title; unknown ones are empty)."""
    k = idx.shape[1]
    frame = pd.DataFrame({"user_id": np.repeat(np.asarray(names, dtype=object), k),
                          "rank": np.tile(np.arange(1, k + 1), len(idx)),
                          "item_id": np.asarray(item_ids, dtype=object)[idx.ravel()],
                          "score": val.ravel()})
    if titles is not None:
        titles = {str(i): t for i, t in dict(titles).items()}
        frame.insert(3, "title", [titles.get(i, "") for i in frame["item_id"]])
    return frame


def no_titles(titles) -> None:
    if titles is not None:
        raise ValueError("titles= adds a title column to the DataFrame of many users; for one user the "
                         "result is (item_ids, scores)")
