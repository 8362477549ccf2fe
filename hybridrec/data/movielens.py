"""MovieLens loaders (GroupLens original files): ``ml-100k``, ``ml-1m``, ``ml-latest-small``.

Each rating is one interaction, with its unix timestamp and its rating (``rating_threshold``
turns ratings into implicit positives). The item table holds the title as GroupLens gives
it (``"Toy Story (1995)"``), the genres joined by ``", "``, and for ``ml-latest-small`` the
user tags (unique per movie, in first-seen order, joined by ``", "``); MovieLens has no
descriptions, so ``description`` is ``""``. Every movie of the movies file is in the
catalogue, rated or not.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .build import LoadOptions, build_interactions
from .fields import RowChecks, parse_ids
from .interactions import Interactions
from .columnar import read_columns
from .readers import read_records, require_file
from .tabular import parse_interactions_table, parse_items_table

log = logging.getLogger("hybridrec.data")

#: Genre flag columns of ml-100k's ``u.item``, in file order (from its ``u.genre``).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
_RATING_COLS = ["user", "item", "rating", "timestamp"]


def _ratings(path: Path, sep: str, options: LoadOptions, header: bool = False):
    cols = _RATING_COLS if not header else ["userId", "movieId", "rating", "timestamp"]
    names = None if header else _RATING_COLS
    table = read_columns(path, sep, dict(zip(cols, ("id", "id", "number", "time"))),
                         header=header, columns=names)
    if table is None:  # not plain: the exact reader, which locates each problem
        table = read_records(path, sep, header=header, columns=names, quoting=False)
    return parse_interactions_table(table, user_col=cols[0], item_col=cols[1],
                                    time_col=cols[3], rating_col=cols[2],
                                    on_bad_rows=options.on_bad_rows)


def _genres(values: np.ndarray) -> np.ndarray:
    """``"A|B"`` -> ``"A, B"``; GroupLens' ``"(no genres listed)"`` -> ``""``."""
    out = pd.Series(values, dtype=object).str.replace("|", ", ", regex=False)
    return out.where(out != "(no genres listed)", "").to_numpy(dtype=object)


def _build(name: str, rows, cat_ids, catalogue, options: LoadOptions) -> Interactions:
    return build_interactions(
        rows.users, rows.items, name=name, options=options, timestamps=rows.timestamps,
        ratings=rows.ratings, catalogue_ids=cat_ids, catalogue=catalogue, locate=rows.locate,
        consume=True,
    )


def load_ml_100k(folder: Path, options: LoadOptions) -> Interactions:
    """MovieLens 100K: ``u.data`` (tab-separated) and ``u.item`` (``|``-separated, latin-1)."""
    rows = _ratings(require_file(folder, "u.data"), "\t", options)
    flags = [f"g{i}" for i in range(len(ML100K_GENRES))]
    table = read_records(require_file(folder, "u.item"), "|", header=False,
                         columns=["id", "title", "release", "video", "url", *flags],
                         encoding="latin-1", quoting=False)
    cat_ids, frame = parse_items_table(table, id_col="id",
                                       text_cols={"title": "title", **{f: f for f in flags}},
                                       on_bad_rows=options.on_bad_rows)
    on = frame[flags].to_numpy(dtype=object) == "1"
    catalogue = frame[["title"]].copy()
    catalogue["genres"] = [
        ", ".join(g for g, flag in zip(ML100K_GENRES, row) if flag and g != "unknown")
        for row in on
    ]
    return _build("ml-100k", rows, cat_ids, catalogue, options)


def load_ml_1m(folder: Path, options: LoadOptions) -> Interactions:
    """MovieLens 1M: ``ratings.dat`` and ``movies.dat`` (``::``-separated; movies latin-1)."""
    rows = _ratings(require_file(folder, "ratings.dat"), "::", options)
    table = read_records(require_file(folder, "movies.dat"), "::", header=False,
                         columns=["id", "title", "genres"], encoding="latin-1")
    cat_ids, catalogue = parse_items_table(
        table, id_col="id", text_cols={"title": "title", "genres": "genres"},
        on_bad_rows=options.on_bad_rows,
    )
    catalogue["genres"] = _genres(catalogue["genres"].to_numpy(dtype=object))
    return _build("ml-1m", rows, cat_ids, catalogue, options)


def load_ml_latest(folder: Path, options: LoadOptions, name: str = "ml-latest-small"
                   ) -> Interactions:
    """MovieLens latest (small or full): ``ratings.csv``, ``movies.csv``, ``tags.csv``."""
    rows = _ratings(require_file(folder, "ratings.csv"), ",", options, header=True)
    table = read_records(require_file(folder, "movies.csv"), ",")
    cat_ids, catalogue = parse_items_table(
        table, id_col="movieId", text_cols={"title": "title", "genres": "genres"},
        on_bad_rows=options.on_bad_rows,
    )
    catalogue["genres"] = _genres(catalogue["genres"].to_numpy(dtype=object))
    tags_path = Path(folder) / "tags.csv"
    if tags_path.is_file():
        catalogue["tags"] = _tags_per_movie(tags_path, cat_ids, options)
    else:
        log.info("%s: no tags.csv; tags are empty", folder)
    return _build(name, rows, cat_ids, catalogue, options)


def _tags_per_movie(path: Path, cat_ids: np.ndarray, options: LoadOptions) -> np.ndarray:
    """Unique tags of each catalogue movie, first-seen order, joined by ``", "``."""
    table = read_records(path, ",")
    table.require(["movieId", "tag"])
    checks = RowChecks(table.path, table.lines, len(table), options.on_bad_rows,
                       table.bad_lines)
    movies = parse_ids(table.column("movieId"), "movieId", checks)
    keep = checks.resolve()
    tags = pd.DataFrame({"movie": movies[keep].astype(str), "tag": table.column("tag")[keep]})
    tags = tags[tags["tag"] != ""].drop_duplicates()
    joined = tags.groupby("movie", sort=False)["tag"].agg(", ".join)
    unknown = ~joined.index.isin(cat_ids.astype(str))
    if unknown.any():
        log.info("%s: tags of %d movies not in movies.csv are ignored", path, unknown.sum())
    return joined.reindex(cat_ids.astype(str)).fillna("").to_numpy(dtype=object)
