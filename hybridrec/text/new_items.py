"""New items: catalogue entries that arrive after training, scored from their text alone.

A new item has an id and text fields (``title``, ``description``, ``genres``, ``tags``,
or whatever the model's text template names) but no interactions. The content-aware
models (``content`` and ``hybrid``) embed its text with the same encoder and template as
their catalogue and score it without retraining; see
:class:`~hybridrec.models.content_base.ContentAware` for the scoring API::

    new = model.new_items(read_new_items("items.csv"), encoder=encoder)
    model.score_new_items(new, ["u1", "u2"])      # [2, n_new] scores
    model.top_users(new, k=50)                   # {item_id: (user_ids, scores)}
    model.recommend("u1", k=10, new_items=new)   # new and known items, ranked together

This module parses and checks the input; the models do the maths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd
import torch

from .item_text import DEFAULT_TEMPLATE, parse_template, render


@dataclass
class NewItems:
    """New items ready to score: ids, their rendered text and content embeddings.

    Attributes:
        ids: external ids (strings), unique and unknown to the model.
        texts: the string each item was encoded from.
        content: content embeddings ``float32 [len(ids), d]`` from the model's encoder.
    """

    ids: list[str]
    texts: list[str]
    content: torch.Tensor

    def __len__(self) -> int:
        return len(self.ids)


def _show(ids: list[str], limit: int = 10) -> str:
    return ", ".join(repr(x) for x in ids[:limit]) + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def parse_new_items(items, *, template: str = DEFAULT_TEMPLATE, known=None,
                    id_col: str = "item_id", where: str = "new items") -> tuple[list[str], list[str]]:
    """Ids and rendered texts of new items, after checking them.

    Args:
        items: a :class:`pandas.DataFrame` or an iterable of mappings, each with ``id_col``
            and text fields.
        template: the model's item text template.
        known: the model's item :class:`~hybridrec.data.Vocabulary` (ids that are taken).
        id_col: the id column.
        where: names the input in messages (e.g. a file path).

    Raises:
        ValueError: no items, no ``id_col`` column or no text column, an empty id,
            duplicate ids, ids the model already knows, or items whose text is empty; the
            message names the offending ids.
    """
    frame = items if isinstance(items, pd.DataFrame) else _frame(items, where)
    if len(frame) == 0:
        raise ValueError(f"{where}: no items given")
    if id_col not in frame.columns:
        raise ValueError(f"{where}: no {id_col!r} column; columns are {list(frame.columns)}")
    fields = [p.field for p in parse_template(template)]
    if not set(fields) & set(frame.columns):
        raise ValueError(f"{where}: none of the text fields {fields} of template {template!r} is a "
                         f"column; columns are {list(frame.columns)}")
    raw = frame[id_col].tolist()
    blank = [k for k, x in enumerate(raw) if x is None or (isinstance(x, float) and x != x) or not str(x).strip()]
    if blank:
        raise ValueError(f"{where}: rows {blank[:10]} (0-based) have an empty {id_col!r}")
    ids = [str(x).strip() for x in raw]
    counts = pd.Series(ids).value_counts()
    dup = counts[counts > 1].index.tolist()
    if dup:
        raise ValueError(f"{where}: duplicate item id(s) {_show(dup)}; each new item needs its own id")
    if known is not None:
        taken = [x for x in ids if x in known]
        if taken:
            raise ValueError(f"{where}: item id(s) {_show(taken)} are already in the model's catalogue; "
                             "new items need ids the model does not know (score known items with "
                             "score/recommend)")
    records = frame[[c for c in dict.fromkeys(fields) if c in frame.columns]].to_dict("records")
    pieces = parse_template(template)
    texts = [render(r, pieces) for r in records]
    empty = [ids[k] for k, t in enumerate(texts) if not t]
    if empty:
        raise ValueError(f"{where}: new item(s) {_show(empty)} have no text in any of {fields}; "
                         "a new item is scored from its text alone")
    return ids, texts


def _frame(items, where: str) -> pd.DataFrame:
    if isinstance(items, Mapping):
        raise TypeError(f"{where}: give a DataFrame or a list of dicts (one per item), not one dict")
    rows = list(items) if isinstance(items, Iterable) else None
    if rows is None or not all(isinstance(r, Mapping) for r in rows):
        raise TypeError(f"{where}: give a DataFrame or a list of dicts, each with 'item_id' and text fields")
    return pd.DataFrame(rows)


def read_new_items(path: str | Path, sep: str | None = None) -> pd.DataFrame:
    """A CSV, TSV or parquet file of new items (header row; ``item_id`` and text columns).

    Raises:
        hybridrec.data.DataError: the file is missing or unreadable (naming the line).
    """
    from ..data.tabular import read_frame

    return read_frame(path, sep)
