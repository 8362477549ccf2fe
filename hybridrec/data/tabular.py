"""Interaction and item tables with named columns: the generic ``csv`` loader and the
parsing that the MovieLens loaders share with it.

A generic data set is an interactions file (one row per interaction) and, optionally, an
items file (one row per item, with text). Both may be CSV (``,``), TSV (``.tsv``/``.tab``)
or parquet (``.parquet``/``.pq``), chosen by extension unless ``sep`` is given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .build import LoadOptions, build_interactions
from .errors import DataError
from .fields import RowChecks, as_int_ids, parse_ids, parse_numbers, parse_timestamps
from .interactions import Interactions
from .columnar import read_columns
from .readers import RawTable, read_records

log = logging.getLogger("hybridrec.data")

_PARQUET = (".parquet", ".pq")


@dataclass
class ParsedRows:
    """Interaction rows parsed from one table; ``lines`` locates them in ``path``."""

    path: str
    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None
    ratings: np.ndarray | None
    lines: np.ndarray | None

    def locate(self, row: int) -> tuple[str, int | None]:
        return self.path, (None if self.lines is None else int(self.lines[row]))


def read_table(path: str | Path, sep: str | None = None,
               kinds: dict[str, str] | None = None) -> RawTable:
    """A CSV, TSV or parquet file with a header, as columns of strings.

    With ``kinds`` (``{column: kind}``, see :func:`~hybridrec.data.columnar.read_columns`), a
    plain CSV/TSV file gives only those columns, typed, through the fast columnar reader
    (a parquet file: only those columns, integer ones typed); any other file is read whole
    as strings.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", str(path))
    if sep is None and path.suffix.lower() in _PARQUET:
        return _read_parquet(path, kinds)
    if sep is None:
        sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    fast = read_columns(path, sep, kinds) if kinds else None
    return fast if fast is not None else read_records(path, sep)


def read_frame(path: str | Path, sep: str | None = None) -> pd.DataFrame:
    """:func:`read_table` as a DataFrame of strings (one column per header name)."""
    table = read_table(path, sep)
    return pd.DataFrame({c: table.data[c] for c in table.columns})


def _read_parquet(path: Path, kinds: dict[str, str] | None = None) -> RawTable:
    """A parquet file as stripped strings (missing values ``""``), rows numbered from 1.

    With ``kinds``, only those columns are converted, and an integer column without nulls
    stays ``int64`` for ids and times (``float64`` for numbers): the values its text would
    give, without a string per cell.
    """
    try:
        df = pd.read_parquet(path)
    except ImportError as err:
        raise DataError(f"reading parquet needs pyarrow ({err})", str(path)) from None
    except Exception as err:  # pyarrow raises its own error types for corrupt files
        raise DataError(f"cannot read parquet file ({err})", str(path)) from None
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        raise DataError(f"the file repeats a column name: {names}", str(path))
    data = {}
    for col, name in zip(df.columns, names):
        if kinds is not None and name not in kinds:
            continue
        values = df[col]
        if kinds is not None and isinstance(values.dtype, np.dtype) and values.dtype.kind == "i":
            data[name] = values.to_numpy(np.float64 if kinds[name] == "number" else np.int64)
        else:
            data[name] = np.array([_cell_text(v) for v in values.astype(object)],
                                  dtype=object).reshape(len(df))
    return RawTable(str(path), names, data, None)


def _cell_text(value) -> str:
    """A parquet cell as a file would hold it: missing values empty, lists as their text."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return str(value).strip()


def column_kinds(*, user_col: str, item_col: str, time_col: str | None,
                 rating_col: str | None) -> dict[str, str] | None:
    """``{column: kind}`` for :func:`~hybridrec.data.columnar.read_columns`; ``None`` when
    one column serves two kinds (say time and rating): it is then read as strings."""
    kinds: dict[str, str] = {}
    for col, kind in ((user_col, "id"), (item_col, "id"), (time_col, "time"),
                      (rating_col, "number")):
        if col is not None:
            if kinds.setdefault(col, kind) != kind:
                return None
    return kinds


def parse_interactions_table(table: RawTable, *, user_col: str, item_col: str,
                             time_col: str | None, rating_col: str | None,
                             on_bad_rows: str) -> ParsedRows:
    """Parse id, time and rating columns, applying the ``on_bad_rows`` policy."""
    wanted = {"user_col": user_col, "item_col": item_col, "time_col": time_col,
              "rating_col": rating_col}
    for option, col in wanted.items():
        if col is not None:
            table.require([col], option)
    checks = RowChecks(table.path, table.lines, len(table), on_bad_rows, table.bad_lines)
    users = parse_ids(table.column(user_col), user_col, checks)
    items = parse_ids(table.column(item_col), item_col, checks)
    ts = None if time_col is None else parse_timestamps(table.column(time_col), time_col, checks)
    ratings = None
    if rating_col is not None:
        ratings = parse_numbers(table.column(rating_col), rating_col, checks)
        checks.flag(np.abs(ratings) > _FLOAT32_MAX,  # ratings are kept as float32
                    lambda r: f"rating {ratings[r]:.6g} in column {rating_col!r} is out of "
                    "range (|x| <= 3.4e38)")
    keep = checks.resolve()
    if keep.all():  # the usual case: no copies of million-row columns
        return ParsedRows(table.path, users, items, ts,
                          None if ratings is None else ratings.astype(np.float32), table.lines)
    lines = None if table.lines is None else table.lines[keep]
    return ParsedRows(
        table.path,
        _ids_subset(users, keep),
        _ids_subset(items, keep),
        None if ts is None else ts[keep],
        None if ratings is None else ratings[keep].astype(np.float32),
        lines,
    )


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def parse_items_table(table: RawTable, *, id_col: str, text_cols: dict[str, str],
                      on_bad_rows: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Item ids and a frame of their text, one column per ``text_cols`` key.

    A repeated item id is a bad row (the first occurrence wins when skipping).
    """
    table.require([id_col], "item_id_col")
    table.require(list(text_cols.values()), "text column")
    checks = RowChecks(table.path, table.lines, len(table), on_bad_rows, table.bad_lines)
    ids = parse_ids(table.column(id_col), id_col, checks)
    dup = pd.Series(ids.astype(str)).duplicated(keep="first").to_numpy() & ~checks.bad
    checks.flag(dup, lambda r: f"item id {str(ids[r])!r} occurs again in column {id_col!r}")
    keep = checks.resolve()
    frame = pd.DataFrame({f: table.column(c)[keep] for f, c in text_cols.items()})
    return _ids_subset(ids, keep), frame


def _ids_subset(ids: np.ndarray, keep: np.ndarray) -> np.ndarray:
    out = ids[keep]
    if out.dtype == object:  # the rows that made the column non-integer may be gone now
        ints = as_int_ids(out)
        return out if ints is None else ints
    return out


def load_csv(
    path: str | Path | None = None,
    *,
    interactions: str | Path | None = None,
    items: str | Path | None = None,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = None,
    rating_col: str | None = None,
    item_id_col: str | None = None,
    title_col: str | None = None,
    description_col: str | None = None,
    genres_col: str | None = None,
    tags_col: str | None = None,
    sep: str | None = None,
    name: str = "csv",
    options: LoadOptions | None = None,
) -> Interactions:
    """Load a generic interactions file and an optional items file.

    Args:
        path: a folder that relative ``interactions``/``items`` paths are read from, or the
            interactions file itself when ``interactions`` is not given.
        interactions: the interactions file (CSV/TSV/parquet with a header row).
        items: the items file; its items without interactions stay in the catalogue.
        user_col, item_col: id columns of the interactions file.
        time_col: timestamp column (unix seconds or ISO 8601 dates); ``None``: no times.
        rating_col: rating column; ``None``: no ratings.
        item_id_col: id column of the items file (default: ``item_col``).
        title_col, description_col, genres_col, tags_col: text columns of the items file;
            ``None`` uses a column named ``title``/``description``/``genres``/``tags`` when
            the items file has one.
        sep: field separator, overriding the one chosen by file extension.
        name: the data set's name in reports.
        options: shared cleaning options (:class:`~hybridrec.data.build.LoadOptions`).
    """
    options = options or LoadOptions()
    inter_path, items_path = _resolve_files(path, interactions, items)
    kinds = column_kinds(user_col=user_col, item_col=item_col, time_col=time_col,
                         rating_col=rating_col)
    table = read_table(inter_path, sep, kinds)
    if time_col is None and "timestamp" in table.columns:
        log.info("%s has a 'timestamp' column; pass time_col='timestamp' to use it", inter_path)
    rows = parse_interactions_table(table, user_col=user_col, item_col=item_col,
                                    time_col=time_col, rating_col=rating_col,
                                    on_bad_rows=options.on_bad_rows)
    del table  # its float64 ratings (rows holds float32 ones) need not outlive parsing
    cat_ids = catalogue = None
    if items_path is not None:
        item_table = read_table(items_path, sep)
        given = {"title": title_col, "description": description_col, "genres": genres_col,
                 "tags": tags_col}
        text_cols = {f: (c if c is not None else f) for f, c in given.items()
                     if c is not None or f in item_table.columns}
        cat_ids, catalogue = parse_items_table(item_table, id_col=item_id_col or item_col,
                                               text_cols=text_cols,
                                               on_bad_rows=options.on_bad_rows)
        log.info("%s: item text from columns %s", items_path, text_cols)
    return build_interactions(
        rows.users, rows.items, name=name, options=options, timestamps=rows.timestamps,
        ratings=rows.ratings, catalogue_ids=cat_ids, catalogue=catalogue, locate=rows.locate,
        consume=True,
    )


def _resolve_files(path, interactions, items) -> tuple[Path, Path | None]:
    base = Path(path).expanduser() if path is not None else None
    if interactions is None:
        if base is None or base.is_dir():
            raise DataError(
                "the csv loader needs interactions=<file> (or path=<interactions file>)"
            )
        return base, _join(base.parent, items) if items is not None else None
    folder = base if base is not None and base.is_dir() else None
    if base is not None and folder is None:
        raise DataError(
            "give either path=<interactions file> or interactions=<file> (with path as its "
            f"folder), not both; {base} is not a folder"
        )
    return _join(folder, interactions), (_join(folder, items) if items is not None else None)


def _join(folder: Path | None, name) -> Path:
    p = Path(name).expanduser()
    return p if folder is None or p.is_absolute() else folder / p
