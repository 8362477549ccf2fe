"""Turn parsed rows into an :class:`Interactions`: the cleaning rules every loader shares.

The rules run in this order, each logged on ``hybridrec.data`` with what it removed:

0. **missing_items**: interactions whose item an items file lacks are kept with empty
   text (``"keep"``, the default, count logged), dropped, or an error;
1. **duplicates** of a (user, item) pair: ``"keep_first"`` (earliest by timestamp, then by
   file order), ``"keep_last"`` or ``"error"``;
2. **rating_threshold**: keep ratings ``>=`` the threshold as implicit positives;
3. **min_user_interactions / min_item_interactions**: applied once (not iterated to a
   k-core), both counted on the rows left after steps 1-2.

Vocabularies are sorted by external id (numerically when every id is an integer), so
indices are deterministic. Users are those with interactions left, plus users the source
lists with none when no user minimum is set. Items are those with interactions left, plus
every item of the item catalogue (items file): catalogue items without interactions stay,
as cold items.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .errors import DataError
from .fields import BAD_ROW_POLICIES
from .interactions import TEXT_FIELDS, Interactions
from .vocab import Vocabulary

log = logging.getLogger("hybridrec.data")

DUPLICATE_RULES = ("keep_first", "keep_last", "error")
MISSING_ITEM_RULES = ("keep", "drop", "error")


@dataclass
class LoadOptions:
    """Cleaning options shared by the file loaders.

    Attributes:
        rating_threshold: keep only ratings ``>=`` this value (implicit positives);
            ``None`` keeps every row.
        min_user_interactions: drop the interactions of users with fewer (1 = no filter).
        min_item_interactions: drop the interactions of items with fewer (1 = no filter).
        duplicates: ``"keep_first"``, ``"keep_last"`` or ``"error"`` for repeated
            (user, item) pairs.
        on_bad_rows: ``"error"`` raises on a malformed row naming file and line;
            ``"skip"`` drops it and logs a count with the first line numbers.
        missing_items: what to do with interactions whose item the items file lacks:
            ``"keep"`` (with empty text, count logged), ``"drop"`` or ``"error"``.
    """

    rating_threshold: float | None = None
    min_user_interactions: int = 1
    min_item_interactions: int = 1
    duplicates: str = "keep_first"
    on_bad_rows: str = "error"
    missing_items: str = "keep"

    def __post_init__(self):
        for name, allowed in (("duplicates", DUPLICATE_RULES), ("on_bad_rows", BAD_ROW_POLICIES),
                              ("missing_items", MISSING_ITEM_RULES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        t = self.rating_threshold
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float, np.number))):
            raise ValueError(f"rating_threshold must be a number or None, not {t!r}")
        for name in ("min_user_interactions", "min_item_interactions"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, not {v!r}")


def encode_ids(arrays: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted unique external ids over several arrays, and each array's indices into them.

    Ids sort numerically when every id is an integer, else as strings.
    """
    if all(np.issubdtype(np.asarray(a).dtype, np.integer) for a in arrays):
        joined = np.concatenate([np.asarray(a, dtype=np.int64) for a in arrays])
    else:
        joined = np.concatenate([np.asarray(a).astype(str) for a in arrays])
    uniq, inverse = np.unique(joined, return_inverse=True)
    bounds = np.cumsum([len(a) for a in arrays])[:-1]
    return uniq, np.split(inverse.astype(np.int64).reshape(-1), bounds)


def build_interactions(
    users: np.ndarray,
    items: np.ndarray,
    *,
    name: str,
    options: LoadOptions,
    timestamps: np.ndarray | None = None,
    ratings: np.ndarray | None = None,
    catalogue_ids: np.ndarray | None = None,
    catalogue: pd.DataFrame | None = None,
    known_users: np.ndarray | None = None,
    row_meta: dict[str, np.ndarray] | None = None,
    locate: Callable[[int], tuple[str | None, int | None]] | None = None,
) -> Interactions:
    """Apply the shared cleaning rules and build the :class:`Interactions`.

    Args:
        users, items: external ids per row (``int64`` or strings).
        name: the data set's name.
        options: cleaning options.
        timestamps: unix seconds per row, or ``None``.
        ratings: rating per row, or ``None``.
        catalogue_ids: external ids of the items file, in the order of ``catalogue``.
        catalogue: text columns (any of :data:`TEXT_FIELDS`) of the items file.
        known_users: users the source lists, possibly with no interactions.
        row_meta: per-row arrays to keep aligned (stored in ``Interactions.meta``).
        locate: ``row -> (path, line)`` for error messages.
    """
    n = len(users)
    has_cat = catalogue_ids is not None
    item_ids, item_parts = encode_ids([items] + ([catalogue_ids] if has_cat else []))
    user_ids, user_parts = encode_ids([users] + ([known_users] if known_users is not None else []))
    item_idx, user_idx = item_parts[0], user_parts[0]
    keep = np.ones(n, dtype=bool)
    info: dict = {"rows_read": n}

    if has_cat:
        in_cat = np.zeros(len(item_ids), dtype=bool)
        in_cat[item_parts[1]] = True
        missing = ~in_cat[item_idx]
        _missing_items(missing, item_ids[item_idx], options.missing_items, locate, info)
        if options.missing_items == "drop":
            keep &= ~missing

    keep &= _deduplicate(user_idx, item_idx, timestamps, keep, options.duplicates,
                         user_ids, item_ids, locate, info)
    if options.rating_threshold is not None:
        if ratings is None:
            raise DataError(f"{name}: rating_threshold is set but the data has no ratings")
        low = keep & (ratings < options.rating_threshold)
        info["dropped_below_threshold"] = int(low.sum())
        log.info("%s: dropped %d interactions with rating < %s", name, low.sum(),
                 options.rating_threshold)
        keep &= ~low
    keep &= _min_counts(user_idx, item_idx, keep, options, name, info)

    # Compact vocabularies: drop ids left without rows (catalogue items always stay).
    used_users = np.zeros(len(user_ids), dtype=bool)
    used_users[user_idx[keep]] = True
    if known_users is not None and options.min_user_interactions <= 1:
        used_users[user_parts[1]] = True
    used_items = np.zeros(len(item_ids), dtype=bool)
    used_items[item_idx[keep]] = True
    if has_cat:
        used_items[item_parts[1]] = True
    new_user = np.cumsum(used_users) - 1
    new_item = np.cumsum(used_items) - 1
    item_vocab = Vocabulary(item_ids[used_items], kind="item")
    table = None
    if catalogue is not None:
        src = np.full(len(item_ids), -1, dtype=np.int64)
        src[item_parts[1]] = np.arange(len(catalogue_ids))
        table = _item_table(src[used_items], catalogue)
    meta = {k: np.asarray(v)[keep] for k, v in (row_meta or {}).items()}
    info["interactions"] = int(keep.sum())
    meta["load_info"] = info
    return Interactions(
        users=new_user[user_idx[keep]],
        items=new_item[item_idx[keep]],
        user_vocab=Vocabulary(user_ids[used_users], kind="user"),
        item_vocab=item_vocab,
        timestamps=None if timestamps is None else timestamps[keep],
        ratings=None if ratings is None else ratings[keep],
        item_table=table,
        name=name,
        meta=meta,
    )


def _where(locate, row: int) -> str:
    if locate is None:
        return f"row {row + 1}"
    path, line = locate(row)
    return f"{path}, line {line}" if line is not None else str(path)


def _missing_items(missing, ext_items, rule, locate, info) -> None:
    n_missing = int(missing.sum())
    info["rows_item_not_in_items_file"] = n_missing
    if not n_missing:
        return
    first = int(np.flatnonzero(missing)[0])
    n_items = len(np.unique(ext_items[missing].astype(str)))
    if rule == "error":
        raise DataError(
            f"item {str(ext_items[first])!r} at {_where(locate, first)} is not in the items file "
            f"({n_items} such items, {n_missing} rows); pass missing_items='keep' or 'drop'"
        )
    action = "kept with empty text" if rule == "keep" else "dropped"
    log.warning("%d interactions (%d items) name items missing from the items file: %s",
                n_missing, n_items, action)


def _deduplicate(user_idx, item_idx, timestamps, keep, rule, user_ids, item_ids, locate, info):
    """Mask of rows to keep after the duplicate rule (among rows already kept)."""
    rows = np.flatnonzero(keep)  # file order
    pair = user_idx * (int(item_idx.max(initial=0)) + 1) + item_idx
    if rule == "error":
        _, first, inverse = np.unique(pair[rows], return_index=True, return_inverse=True)
        again = np.flatnonzero(first[inverse] != np.arange(len(rows)))
        if len(again):
            r, prior = rows[again[0]], rows[first[inverse[again[0]]]]
            raise DataError(
                f"user {str(user_ids[user_idx[r]])!r} and item {str(item_ids[item_idx[r]])!r} "
                f"occur at {_where(locate, int(prior))} and again at {_where(locate, int(r))} "
                f"({len(again)} duplicate rows in all); pass duplicates='keep_first' or "
                "'keep_last'"
            )
    if timestamps is not None:  # "first" means earliest in time, then in file order
        rows = rows[np.argsort(timestamps[rows], kind="stable")]
    if rule == "keep_last":
        rows = rows[::-1]
    _, first = np.unique(pair[rows], return_index=True)
    out = np.zeros(len(keep), dtype=bool)
    out[rows[first]] = True
    n_dup = len(rows) - len(first)
    info["dropped_duplicates"] = n_dup
    if n_dup:
        log.info("dropped %d duplicate (user, item) rows (%s)", n_dup, rule)
    return out


def _min_counts(user_idx, item_idx, keep, options, name, info):
    out = np.ones(len(keep), dtype=bool)
    for what, idx, minimum in (("user", user_idx, options.min_user_interactions),
                               ("item", item_idx, options.min_item_interactions)):
        if minimum <= 1:
            continue
        counts = np.bincount(idx[keep], minlength=int(idx.max(initial=0)) + 1)
        low = keep & (counts[idx] < minimum)
        n_ent = int(((counts > 0) & (counts < minimum)).sum())
        info[f"dropped_{what}_min_rows"] = int(low.sum())
        log.info("%s: dropped %d interactions of %d %ss with fewer than %d interactions",
                 name, low.sum(), n_ent, what, minimum)
        out &= ~low
    return out


def _item_table(src: np.ndarray, catalogue: pd.DataFrame) -> pd.DataFrame:
    """Text per vocabulary item: row ``src[j]`` of the catalogue, or ``""`` when ``-1``."""
    table = pd.DataFrame(index=pd.RangeIndex(len(src)))
    has = src >= 0
    for col in TEXT_FIELDS:
        values = np.full(len(src), "", dtype=object)
        if col in catalogue.columns:
            values[has] = catalogue[col].to_numpy(dtype=object)[src[has]]
        table[col] = pd.Series(values, dtype=object).astype(str)
    return table
