"""pandas DataFrames in: the same parsing and cleaning as the generic ``csv`` loader.

Each frame becomes the :class:`~hybridrec.data.readers.RawTable` of stripped strings that a
file would give, then goes through :func:`~hybridrec.data.tabular.parse_interactions_table`,
:func:`~hybridrec.data.tabular.parse_items_table` and
:func:`~hybridrec.data.build.build_interactions`, so a frame read from a CSV file loads to
the same :class:`Interactions` as the file itself (vocabularies, indices, times, ratings,
item table, cleaning and errors). Values become text as a CSV file would hold them:
missing values (``None``, ``NaN``, ``NA``, ``NaT``) are empty, and whole-number floats are
written as integers (an id column with a gap is read by pandas as floats; ``2.0`` stays id
``"2"``). Datetime columns give unix seconds (naive ones are UTC). Rows are numbered from 1
in frame order in messages (row 1 is ``frame.iloc[0]``), as in parquet files.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np
import pandas as pd

from .build import LoadOptions, build_interactions
from .errors import DataError
from .interactions import TEXT_FIELDS, Interactions
from .readers import RawTable
from .tabular import parse_interactions_table, parse_items_table

#: Divisors from a ``time_unit`` to seconds.
TIME_UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_EXACT = 2**53  # floats above this are not exact integers


def load_frames(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = None,
    rating_col: str | None = None,
    item_id_col: str | None = None,
    text_cols: Mapping[str, str | list[str]] | None = None,
    time_unit: str = "s",
    name: str = "pandas",
    options: LoadOptions | None = None,
    sources: tuple[str, str] = ("interactions DataFrame", "items DataFrame"),
) -> Interactions:
    """Load an interactions frame and an optional items frame.

    Args:
        interactions: one row per interaction.
        items: one row per item, with text; its items without interactions stay in the
            catalogue (cold items).
        user_col, item_col: id columns of ``interactions``.
        time_col: timestamp column (numbers in ``time_unit``, ISO 8601 strings or
            datetimes); ``None``: no times.
        rating_col: rating column; ``None``: no ratings.
        item_id_col: id column of ``items`` (default: ``item_col``).
        text_cols: ``{field: column or [columns]}`` for the fields of :data:`TEXT_FIELDS`;
            several columns, and list-valued cells, are joined with ``" "``. ``None``: each
            field from a column of the same name when ``items`` has one.
        time_unit: ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``: the unit of numeric times.
        name: the data set's name in reports.
        options: cleaning options (:class:`~hybridrec.data.build.LoadOptions`).
        sources: how messages name the two frames (a loader passes its files).

    Raises:
        DataError: a missing column (named, with the frame's columns) or a bad row (named
            by its 1-based position and column, unless ``options.on_bad_rows="skip"``).
    """
    options = options or LoadOptions()
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit must be one of {tuple(TIME_UNITS)}, not {time_unit!r}")
    wanted = {"user_col": user_col, "item_col": item_col, "time_col": time_col,
              "rating_col": rating_col}
    wanted = {k: str(v) for k, v in wanted.items() if v is not None}
    require_columns(interactions, wanted, sources[0])
    table = frame_table(interactions, sources[0], list(wanted.values()),
                        time_col=wanted.get("time_col"), time_unit=time_unit)
    with _index_labels(interactions, sources[0]):
        rows = parse_interactions_table(table, user_col=wanted["user_col"],
                                        item_col=wanted["item_col"],
                                        time_col=wanted.get("time_col"),
                                        rating_col=wanted.get("rating_col"),
                                        on_bad_rows=options.on_bad_rows)
    cat_ids = catalogue = None
    if items is not None:
        id_col = str(item_id_col if item_id_col is not None else item_col)
        fields = text_columns(text_cols, items, sources[1])
        require_columns(items, {"item_id_col": id_col}, sources[1])
        item_table = frame_table(items, sources[1], [id_col], text=fields)
        with _index_labels(items, sources[1]):
            cat_ids, catalogue = parse_items_table(
                item_table, id_col=id_col, text_cols={f: _key(c) for f, c in fields.items()},
                on_bad_rows=options.on_bad_rows)
    elif text_cols:
        raise ValueError("text_cols names columns of the items frame, but no items frame is given")
    skipped = len(rows.users) < len(interactions)
    return build_interactions(
        rows.users, rows.items, name=name, options=options, timestamps=rows.timestamps,
        ratings=rows.ratings, catalogue_ids=cat_ids, catalogue=catalogue,
        locate=lambda r: (_row_name(interactions, sources[0], r, skipped), None),
    )


def _row_name(frame: pd.DataFrame, source: str, row: int, skipped: bool) -> str:
    if skipped:  # the parsers drop bad rows without saying which
        return f"{source}, row {row + 1} of the rows left after skipping bad rows"
    return f"{source}, row {row + 1} (index {_label(frame, row)!r})"


def _label(frame: pd.DataFrame, row: int):
    label = frame.index[row]
    return label.item() if isinstance(label, np.generic) else label


@contextmanager
def _index_labels(frame: pd.DataFrame, source: str):
    """Add the frame's index label to a parser's "row N" message."""
    try:
        yield
    except DataError as err:
        prefix = f"{source}: row "
        text = str(err)
        num = text[len(prefix):].split(":", 1)[0]
        if err.path != source or not text.startswith(prefix) or not num.isdigit():
            raise
        rest = text[len(prefix) + len(num):]
        raise DataError(f"row {num} (index {_label(frame, int(num) - 1)!r}){rest}",
                        source) from None


def require_columns(frame, wanted: Mapping[str, str], source: str) -> None:
    """Raise a :class:`DataError` naming the option, the column and the frame's columns
    for the first ``{option: column}`` the frame lacks."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{source} must be a pandas DataFrame, not {type(frame).__name__}")
    have = [str(c) for c in frame.columns]
    if len(set(have)) != len(have):
        dup = next(c for c in have if have.count(c) > 1)
        raise DataError(f"column {dup!r} occurs twice; its columns are {have}", source)
    for option, col in wanted.items():
        if str(col) not in have:
            raise DataError(f"{option} {str(col)!r} is not a column; its columns are {have}",
                            source)


def text_columns(text_cols, frame: pd.DataFrame, source: str) -> dict[str, list[str]]:
    """``{field: [columns]}`` from ``text_cols`` (``None``: same-named columns), checked."""
    have = [str(c) for c in frame.columns]
    if text_cols is None:
        return {f: [f] for f in TEXT_FIELDS if f in have}
    out = {}
    for field, cols in dict(text_cols).items():
        if field not in TEXT_FIELDS:
            raise ValueError(f"text_cols: {field!r} is not a text field; fields: {TEXT_FIELDS}")
        cols = [cols] if isinstance(cols, str) else [str(c) for c in cols]
        if not cols:
            raise ValueError(f"text_cols[{field!r}] names no column")
        require_columns(frame, {f"text_cols[{field!r}]": c for c in cols}, source)
        out[field] = cols
    return out


def _key(cols: list[str]) -> str:
    """The table column holding a text field: the column itself, or the joined ones."""
    return cols[0] if len(cols) == 1 else " + ".join(cols)


def frame_table(frame: pd.DataFrame, source: str, columns: list[str], *,
                time_col: str | None = None, time_unit: str = "s",
                text: Mapping[str, list[str]] | None = None) -> RawTable:
    """The :class:`RawTable` a file with these rows would give (only the columns used).

    Args:
        frame: the rows.
        source: the frame's name in messages.
        columns: columns to convert as single values (ids, ratings, times).
        time_col: the column converted to unix seconds (numbers in ``time_unit``, datetimes).
        time_unit: unit of ``time_col``'s numbers.
        text: ``{field: [columns]}``; list-valued cells and several columns are joined
            with ``" "`` into one column named by :func:`_key`.
    """
    by_name = {str(c): frame[c] for c in frame.columns}
    data: dict[str, np.ndarray] = {}
    for col in columns:
        if col == time_col:
            data[col] = time_strings(by_name[col], time_unit, source, col)
        else:
            data[col] = as_strings(by_name[col], source, col, join_lists=False)
    for cols in (text or {}).values():
        parts = [as_strings(by_name[c], source, c, join_lists=True) for c in cols]
        data[_key(cols)] = parts[0] if len(parts) == 1 else _join(parts)
    return RawTable(source, list(by_name), data, None)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return np.array([" ".join(p for p in row if p) for row in zip(*parts)], dtype=object)


def as_strings(values: pd.Series, source: str, column: str, *, join_lists: bool) -> np.ndarray:
    """Stripped strings, ``object [n]``, as a CSV file would hold the values.

    A list-valued cell is joined with ``" "`` when ``join_lists`` (text), else an error.
    """
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return values.to_numpy().astype(str).astype(object)
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return _float_strings(values.to_numpy(np.float64))
    if dtype.kind == "M":
        return _datetime_strings(values)
    if isinstance(dtype, pd.StringDtype):  # no lists possible: vectorised
        return values.str.strip().fillna("").to_numpy(dtype=object)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values.to_numpy(dtype=object)):
        if isinstance(v, (list, tuple, np.ndarray)):
            if not join_lists:
                raise DataError(f"row {i + 1}: column {column!r} holds a list ({_short(v)}); "
                                "only text columns may", source)
            out[i] = " ".join(s for s in (_text(x) for x in v) if s)
        else:
            out[i] = _text(v)
    return out


def _short(v) -> str:
    s = repr(list(v))
    return s if len(s) <= 60 else s[:57] + "..."


def _text(v) -> str:
    if v is None or v is pd.NaT or (not isinstance(v, (str, list, tuple, np.ndarray))
                                     and pd.isna(v)):
        return ""
    if isinstance(v, (float, np.floating)) and float(v).is_integer() and abs(v) < _EXACT:
        return str(int(v))
    return str(v).strip()


def _float_strings(x: np.ndarray) -> np.ndarray:
    out = np.array([str(v) for v in x.tolist()], dtype=object) if len(x) else x.astype(object)
    whole = np.isfinite(x) & (np.floor(x) == x) & (np.abs(x) < _EXACT)
    out[whole] = x[whole].astype(np.int64).astype(str)
    out[np.isnan(x)] = ""
    return out


def _datetime_strings(values: pd.Series) -> np.ndarray:
    dt = pd.to_datetime(values, utc=True)
    out = np.array([v.isoformat() for v in dt], dtype=object) if len(dt) else np.empty(0, object)
    out[dt.isna().to_numpy()] = ""
    return out


def time_strings(values: pd.Series, unit: str, source: str, column: str) -> np.ndarray:
    """Unix seconds as strings from datetimes, or from numbers in ``unit`` (floored);
    other values are left as text for the parser (ISO 8601 dates, or a bad row)."""
    div = TIME_UNITS[unit]
    if values.dtype.kind == "M":
        dt = pd.to_datetime(values, utc=True)
        bad = dt.isna().to_numpy()
        secs = np.zeros(len(dt), dtype=np.int64)
        epoch = pd.Timestamp("1970-01-01", tz="UTC")
        secs[~bad] = ((dt[~bad] - epoch) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
        out = secs.astype(str).astype(object)
        out[bad] = ""
        return out
    if div == 1:
        return as_strings(values, source, column, join_lists=False)
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        return (values.to_numpy().astype(np.int64) // div).astype(str).astype(object)
    text = as_strings(values, source, column, join_lists=False)
    num = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(np.float64)
    ok = np.isfinite(num)
    text[ok] = np.floor(num[ok] / div).astype(np.int64).astype(str)
    return text
