"""What the content-aware models share: item text settings, content embeddings, new items.

A content-aware model keeps one content embedding ``c_i`` per catalogue item, encoded from
the item's text (or given precomputed), and scores an item through
:meth:`ContentAware._item_vectors` of its content, which is how it scores items with no
interactions: a brand-new item is scored exactly as a catalogue item with the same
text and no interactions would be.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data import Interactions
from ..text.encoder import parse_text_model
from ..text.new_items import NewItems, parse_new_items
from ..text.item_text import item_strings, parse_template


class ContentAware:
    """Mixin for :class:`~hybridrec.models.base.Recommender` subclasses with content embeddings.

    Subclasses call :meth:`_init_text` in their constructor, :meth:`_content_for` in
    ``fit``, and implement :meth:`_user_vectors` and :meth:`_item_vectors` so that
    ``score_users(u)[:, i] == _user_vectors(u) @ _item_vectors(c_i)`` for items without
    interactions.
    """

    content_aware = True
    _content: torch.Tensor | None = None

    def _init_text(self, text_model, text_template, on_empty, text_batch_size) -> None:
        if on_empty not in ("error", "zero"):
            raise ValueError(f"on_empty must be 'error' or 'zero', got {on_empty!r}")
        parse_template(text_template)  # a bad template fails now, not after training
        parse_text_model(text_model)  # so does an unknown text_model form
        self.text_model = None if text_model is None else str(text_model)
        self.text_template, self.on_empty, self.text_batch_size = text_template, on_empty, int(text_batch_size)

    def _text_settings(self) -> dict:
        return {"text_model": self.text_model, "text_template": self.text_template,
                "on_empty": self.on_empty, "text_batch_size": self.text_batch_size}

    # -- to implement ------------------------------------------------------------------
    def _user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """Scoring vectors of a batch of user indices, ``[B, d']``."""
        raise NotImplementedError

    def _item_vectors(self, content: torch.Tensor) -> torch.Tensor:
        """Scoring vectors of items with no interactions from their content, ``[m, d']``."""
        raise NotImplementedError

    # -- content embeddings ------------------------------------------------------------
    def text_encoder(self, **options):
        """The encoder of this model's ``text_model`` on its device (:func:`~hybridrec.text.make_encoder`):
        a :class:`~hybridrec.text.TextEncoder` for a sentence-transformers model, an
        :class:`~hybridrec.text.LLMItemEncoder` for ``"llm"`` or ``"llm:<hub name or folder>"``."""
        from ..text import make_encoder

        progress = getattr(getattr(self, "train_config", None), "progress", True)  # follows train.progress
        options = {"device": self.device, "batch_size": self.text_batch_size, "on_empty": self.on_empty,
                   "progress": progress, **options}
        return make_encoder(self.text_model, **options)

    @property
    def content_embeddings(self) -> torch.Tensor:
        """The catalogue's content embeddings ``c``, ``[n_items, d]``."""
        self._check_fitted()
        return self._content

    def _content_for(self, train: Interactions, item_embeddings=None, encoder=None) -> torch.Tensor:
        """Content embeddings of ``train``'s catalogue, ``float32 [n_items, d]`` on the CPU.

        ``item_embeddings`` (a tensor or array, one row per item in index order) wins; else
        the item table's strings (:attr:`text_template`) are encoded by ``encoder``
        (anything with ``encode(texts, ids=...)``), or by :meth:`text_encoder`.
        """
        n = train.n_items
        if item_embeddings is not None:
            c = torch.as_tensor(np.asarray(item_embeddings) if not torch.is_tensor(item_embeddings)
                                else item_embeddings).detach().float().cpu()
            if c.ndim != 2 or c.shape[0] != n:
                raise ValueError(f"item_embeddings has shape {tuple(c.shape)}; need one row per item of "
                                 f"{train.name!r}: [{n}, d], in item index order")
            if not torch.isfinite(c).all():
                bad = int(torch.nonzero(~torch.isfinite(c).all(1))[0])
                raise ValueError(f"item_embeddings row {bad} (item {train.item_vocab.ids[bad]!r}) is not finite")
            return c
        texts = item_strings(train, self.text_template)
        enc = encoder if encoder is not None else self.text_encoder()
        c = torch.as_tensor(enc.encode(texts, ids=train.item_vocab.to_list())).detach().float().cpu()
        if c.shape[0] != n:
            raise ValueError(f"encoder returned {c.shape[0]} embeddings for {n} items")
        return c

    # -- new items ---------------------------------------------------------------------
    def new_items(self, items, encoder=None, *, id_col: str = "item_id", where: str = "new items") -> NewItems:
        """Check, render and encode new items (see :func:`hybridrec.text.new_items.parse_new_items`).

        Args:
            items: DataFrame or list of dicts with ``id_col`` and text fields.
            encoder: the encoder the catalogue was encoded with; default
                :meth:`text_encoder`.
        """
        self._check_fitted()
        ids, texts = parse_new_items(items, template=self.text_template, known=self.item_vocab,
                                     id_col=id_col, where=where)
        enc = encoder if encoder is not None else self.text_encoder()
        c = torch.as_tensor(enc.encode(texts, ids=ids)).detach().float().cpu()
        if c.shape != (len(ids), self._content.shape[1]):
            raise ValueError(f"{where}: the encoder gives embeddings of shape {tuple(c.shape)}, but the model's "
                             f"catalogue has {self._content.shape[1]}-d content embeddings; encode new items "
                             "with the encoder used at fit time")
        return NewItems(ids, texts, c)

    def _as_new_items(self, new_items) -> NewItems:
        return new_items if isinstance(new_items, NewItems) else self.new_items(new_items)

    @torch.no_grad()
    def _new_scores(self, users: torch.Tensor, new: NewItems) -> torch.Tensor:
        items = self._item_vectors(new.content.to(self.device))
        return (self._user_vectors(users.to(self.device)) @ items.T).float().cpu()

    def score_new_items(self, new_items, user_ids=None) -> np.ndarray:
        """Scores of new items for users: ``[n_users, n_new]`` (one user id: ``[n_new]``).

        Args:
            new_items: :class:`~hybridrec.text.new_items.NewItems`, or raw items for
                :meth:`new_items` (encoded with the default encoder).
            user_ids: external user ids; default every user, in index order.
        """
        self._check_fitted()
        new = self._as_new_items(new_items)
        single = isinstance(user_ids, (str, int, np.integer))
        if user_ids is None:
            users = torch.arange(len(self.user_vocab))
        else:
            users = torch.as_tensor(np.atleast_1d(self.user_vocab.index(user_ids)))
        s = self._new_scores(users, new).numpy()
        return s[0] if single else s

    def top_users(self, new_items, k: int = 10) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """For each new item, the ``k`` users who score it highest: ``{item_id: (user_ids, scores)}``."""
        self._check_fitted()
        new = self._as_new_items(new_items)
        n_users = len(self.user_vocab)
        if not 1 <= k <= n_users:
            raise ValueError(f"k={k}, but the model knows {n_users} users; choose 1 <= k <= {n_users}")
        out, users, block = {}, torch.arange(n_users), max(1, 2 ** 24 // n_users)  # ~64 MiB of scores
        for j0 in range(0, len(new), block):
            part = NewItems(new.ids[j0:j0 + block], new.texts[j0:j0 + block], new.content[j0:j0 + block])
            top = torch.topk(self._new_scores(users, part), k, dim=0)  # over users, per item
            for j, item in enumerate(part.ids):
                out[item] = (self.user_vocab.lookup(top.indices[:, j].numpy()), top.values[:, j].numpy())
        return out

    @torch.no_grad()
    def recommend(self, users, k: int = 10, exclude_seen: bool = True, new_items=None, *, titles=None):
        """Top-``k`` items for one user ``(item_ids, scores)`` or many (a DataFrame), as
        :meth:`Recommender.recommend <hybridrec.models.base.Recommender.recommend>`; with
        ``new_items``, known and new items are ranked together."""
        if new_items is None:
            return super().recommend(users, k=k, exclude_seen=exclude_seen, titles=titles)
        self._check_fitted()
        new = self._as_new_items(new_items)
        return self._recommend_known(users, k, exclude_seen, titles,
                                     extra=(lambda u: self._new_scores(u, new), np.asarray(new.ids, dtype=object)))

    # -- free text (onboarding) --------------------------------------------------------
    def _encode_texts(self, texts: list[str], encoder=None) -> torch.Tensor:
        """Content embeddings of free texts, ``[n, d]`` on the model's device, by ``encoder``
        (default :meth:`text_encoder`, without the disk cache: a user's words are not kept)."""
        enc = encoder if encoder is not None else self.text_encoder(cache=False, progress=False)
        c = torch.as_tensor(enc.encode(list(texts))).detach().float()
        if c.ndim != 2 or c.shape[1] != self._content.shape[1]:
            raise ValueError(f"the text encoder gives embeddings of shape {tuple(c.shape)}, but the model's catalogue "
                             f"has {self._content.shape[1]}-d content embeddings; encode the text with the encoder "
                             "used at fit time (encoder=...)")
        return c.to(self.device)
