"""Hugging Face ``datasets`` sources in: any hub data set or local file, and the Amazon
Reviews 2023 layout.

A source is read with ``datasets.load_dataset``: a hub name (``"user/data"``, with an
optional config), a packaged builder with ``data_files`` (``"json"``, ``"parquet"``,
``"csv"``), or a local file, whose builder is chosen by its extension (``.jsonl``,
``.json``, ``.parquet``, ``.csv``, also compressed as ``.gz``/``.bz2``/``.xz``/``.zst``).
Local files need no network; their arrow cache goes to a temporary folder removed after
loading, unless ``cache_dir`` is given (hub and ``hf://`` files use ``datasets``' cache).
Only the columns used are converted to pandas, then
:func:`~hybridrec.data.frames.load_frames` parses and cleans them as the ``csv`` loader
does; list-valued text cells (Amazon's ``description``, ``features``, ``categories``) are
joined with ``" "``.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from .build import LoadOptions
from .errors import DataError
from .frames import TIME_UNITS, load_frames
from .interactions import TEXT_FIELDS, Interactions

log = logging.getLogger("hybridrec.data")

#: ``datasets``' packaged builders that read local files (no hub, no network).
LOCAL_BUILDERS = ("json", "parquet", "csv", "arrow", "text")
_BY_SUFFIX = {".jsonl": "json", ".json": "json", ".ndjson": "json", ".parquet": "parquet",
              ".pq": "parquet", ".csv": "csv", ".tsv": "csv", ".arrow": "arrow"}
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4")

#: The hub repository of Amazon Reviews 2023 (McAuley Lab).
AMAZON_2023_REPO = "McAuley-Lab/Amazon-Reviews-2023"
#: Amazon Reviews 2023 metadata columns behind each text field.
AMAZON_2023_TEXT = {"title": "title", "description": ["description", "features"],
                    "genres": "categories"}


def builder_for(path: str | Path) -> str:
    """The ``datasets`` builder of a data file, by extension (``.jsonl.gz`` -> ``json``)."""
    name = Path(path).name.lower()
    for ext in _COMPRESSED:
        if name.endswith(ext):
            name = name[: -len(ext)]
    builder = _BY_SUFFIX.get(Path(name).suffix)
    if builder is None:
        raise DataError(f"cannot tell the file type from the extension; use one of "
                        f"{sorted(_BY_SUFFIX)} or pass the builder with data_files", str(path))
    return builder


def looks_like_file(ref) -> bool:
    """Whether ``ref`` ends with a data file extension (and so is no hub name)."""
    return str(ref).lower().endswith((*_BY_SUFFIX, *_COMPRESSED))


def read_hf(source: str, *, split: str = "train", data_files=None, config: str | None = None,
            columns: dict[str, str | list[str]], what: str = "data", optional=(),
            **load_kwargs):
    """One split of a ``datasets`` source as a DataFrame of the named columns.

    Args:
        source: a hub name, a packaged builder (with ``data_files``) or a local file.
        split: the split to read.
        data_files: files for a packaged builder (a path, a list, or ``{split: paths}``).
        config: the hub configuration (``datasets``' ``name``).
        columns: ``{option: column or [columns]}`` the caller needs, for messages.
        what: what the source holds (``"interactions"``, ``"items"``), for messages.
        optional: more columns to read when the source has them.
        **load_kwargs: passed to ``datasets.load_dataset`` (``cache_dir``, ``revision``,
            ``token``, ``features``, ...).

    Returns:
        ``(frame, label)``: the columns as pandas, and how messages name the source.

    Raises:
        DataError: the source cannot be read, or lacks a column (named, with its columns).
    """
    try:
        import datasets  # heavy: imported only when a source is read
    except ImportError as err:
        raise ImportError(f"Hugging Face sources need the datasets package ({err}); "
                          "pip install datasets") from err

    if load_kwargs.get("streaming"):
        raise ValueError("streaming sources are not supported: the data is loaded whole")
    path = Path(str(source)).expanduser()
    builder, files = str(source), data_files
    if data_files is None and not path.exists() and looks_like_file(source):
        raise DataError("file not found", str(source))
    if data_files is None and path.is_file():
        builder, files = builder_for(path), str(path)
        if path.suffix.lower() == ".tsv":
            load_kwargs.setdefault("sep", "\t")
    label = _label(builder, files, config, split, what)
    remote = files is not None and "://" in _first(files)
    local = (builder in LOCAL_BUILDERS and not remote) or path.is_dir()
    if builder in LOCAL_BUILDERS and files is None:
        raise DataError(f"the {builder!r} builder needs data_files=<file(s)>", label)
    with ExitStack() as stack:
        if local and "cache_dir" not in load_kwargs:
            load_kwargs["cache_dir"] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="hybridrec-hf-", ignore_cleanup_errors=True))
        try:
            ds = datasets.load_dataset(builder, config, data_files=files, split=split,
                                       **load_kwargs)
        except (FileNotFoundError, ValueError, datasets.exceptions.DatasetGenerationError) as err:
            cause = err.__cause__ or err
            raise DataError(f"datasets cannot load it ({type(cause).__name__}: {cause})",
                            label) from err
        have = list(ds.column_names)
        need = []
        for option, cols in columns.items():
            for col in ([cols] if isinstance(cols, str) else cols):
                if col not in have:
                    raise DataError(f"{option} {col!r} is not a column; its columns are {have}",
                                    label)
                need.append(col)
        need += [c for c in optional if c in have]
        frame = ds.select_columns(list(dict.fromkeys(need))).to_pandas()
    log.info("%s: %d rows, columns %s", label, len(frame), list(frame.columns))
    return frame, label


def _label(builder, files, config, split, what) -> str:
    if files is not None:
        shown = files if isinstance(files, str) else (
            files[0] if isinstance(files, (list, tuple)) and len(files) == 1 else files)
        return f"{what} {shown}"
    return f"{what} {builder}" + (f" (config {config}" if config else " (") + f", split {split})"


def load_hf(
    source: str,
    *,
    split: str = "train",
    data_files=None,
    config: str | None = None,
    items: str | None = None,
    items_data_files=None,
    items_config: str | None = None,
    items_split: str | None = None,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = None,
    rating_col: str | None = None,
    item_id_col: str | None = None,
    text_cols: dict | None = None,
    time_unit: str = "s",
    name: str | None = None,
    options: LoadOptions | None = None,
    **load_kwargs,
) -> Interactions:
    """Load interactions (and item text) from Hugging Face ``datasets`` sources.

    Args:
        source: interactions: a hub name, a packaged builder (``"json"``, ``"parquet"``,
            ``"csv"``) with ``data_files``, or a local data file.
        split: the split of ``source`` to read.
        data_files: files for a packaged builder.
        config: the hub configuration of ``source``.
        items: the items source (same forms); ``None`` with ``items_data_files`` given
            uses ``source``'s builder. Its items without interactions stay as cold items.
        items_data_files, items_config: as ``data_files``/``config``, for ``items``.
        items_split: the split of ``items`` (default: ``split``).
        user_col, item_col: id columns of the interactions.
        time_col: timestamp column (numbers in ``time_unit``, ISO 8601 strings or
            datetimes); ``None``: no times.
        rating_col: rating column; ``None``: no ratings.
        item_id_col: id column of the items (default: ``item_col``).
        text_cols: ``{field: column or [columns]}`` for title, description, genres, tags;
            ``None``: same-named columns of the items source.
        time_unit: ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``.
        name: the data set's name in reports (default: from ``source``).
        options: cleaning options (:class:`~hybridrec.data.build.LoadOptions`).
        **load_kwargs: passed to every ``datasets.load_dataset`` call (``cache_dir``,
            ``revision``, ``token``, ...).

    Raises:
        DataError: a source that cannot be read, a missing column (named with its
            source), or a bad row.
    """
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit must be one of {tuple(TIME_UNITS)}, not {time_unit!r}")
    wanted = {"user_col": user_col, "item_col": item_col, "time_col": time_col,
              "rating_col": rating_col}
    frame, label = read_hf(source, split=split, data_files=data_files, config=config,
                           columns={k: v for k, v in wanted.items() if v is not None},
                           what="interactions", **dict(load_kwargs))
    item_frame, item_label = None, "items"
    if items is None and items_data_files is not None:
        items = builder_for(_first(items_data_files))
    if items is not None:
        id_col = item_id_col if item_id_col is not None else item_col
        columns = {"item_id_col": id_col}
        if text_cols is not None:
            columns.update({f"text_cols[{f!r}]": c for f, c in dict(text_cols).items()})
        item_frame, item_label = read_hf(items, split=items_split or split,
                                         data_files=items_data_files, config=items_config,
                                         columns=columns, what="items",
                                         optional=TEXT_FIELDS if text_cols is None else (),
                                         **dict(load_kwargs))
    elif text_cols:
        raise ValueError("text_cols names columns of the items source, but no items source "
                         "is given")
    return load_frames(frame, item_frame, user_col=user_col, item_col=item_col,
                       time_col=time_col, rating_col=rating_col, item_id_col=item_id_col,
                       text_cols=text_cols, time_unit=time_unit,
                       name=name or _default_name(source, data_files), options=options,
                       sources=(label, item_label))


def load_amazon2023(
    reviews: str,
    meta: str | None = None,
    *,
    rating_threshold: float | None = None,
    repo: str = AMAZON_2023_REPO,
    name: str = "amazon-2023",
    options: LoadOptions | None = None,
    **load_kwargs,
) -> Interactions:
    """Load Amazon Reviews 2023 (Hou et al., 2024, https://amazon-reviews-2023.github.io/).

    Reviews give ``user_id``, ``parent_asin`` (the item), ``rating`` and ``timestamp``
    (milliseconds, stored as unix seconds); the metadata gives ``parent_asin``, ``title``
    (-> title), ``description`` and ``features`` (lists, joined -> description) and
    ``categories`` (list, joined -> genres). Metadata items nobody reviewed stay as cold
    items. A user who reviewed two variants of one product is one duplicate pair
    (``options.duplicates`` decides; the earliest review is kept by default).

    Args:
        reviews: a local reviews file (``.jsonl``, ``.jsonl.gz``, ``.parquet``, ...), an
            ``hf://`` file, or a category of ``repo``: ``"All_Beauty"`` or
            ``"raw_review_All_Beauty"``, read as ``raw/review_categories/All_Beauty.jsonl``.
        meta: the metadata, in the same forms (``"raw_meta_All_Beauty"`` reads
            ``raw/meta_categories/meta_All_Beauty.jsonl``); a relative path not found as
            given is looked for next to a local ``reviews`` file. ``None``: no item text.
        rating_threshold: keep reviews rated at least this (shortcut for
            ``options.rating_threshold``).
        repo: the hub repository of the categories.
        name: the data set's name in reports.
        options: cleaning options (:class:`~hybridrec.data.build.LoadOptions`).
        **load_kwargs: passed to ``datasets.load_dataset`` (``cache_dir``, ``token``, ...).
    """
    options = options or LoadOptions()
    if rating_threshold is not None:
        if options.rating_threshold not in (None, rating_threshold):
            raise ValueError(f"rating_threshold={rating_threshold} but options.rating_threshold"
                             f"={options.rating_threshold}; give one")
        options = replace(options, rating_threshold=rating_threshold)
    rev_files = amazon_2023_file(reviews, "review", repo)
    meta_files = None
    if meta is not None:
        base = Path(rev_files).parent if Path(rev_files).is_file() else None
        meta_files = amazon_2023_file(meta, "meta", repo, base)
    return load_hf(builder_for(rev_files), data_files=rev_files, items_data_files=meta_files,
                   user_col="user_id", item_col="parent_asin", time_col="timestamp",
                   rating_col="rating", item_id_col="parent_asin",
                   text_cols=AMAZON_2023_TEXT if meta is not None else None, time_unit="ms",
                   name=name, options=options, **load_kwargs)


def amazon_2023_file(ref: str, kind: str, repo: str = AMAZON_2023_REPO,
                     base: Path | None = None) -> str:
    """The file behind an Amazon Reviews 2023 reference.

    Args:
        ref: a local file (as given, else relative to ``base``), an ``hf://`` path, or a
            category (``"All_Beauty"``, ``"raw_review_All_Beauty"``/``"raw_meta_All_Beauty"``).
        kind: ``"review"`` or ``"meta"``.
        repo: the hub repository of the categories.
        base: a folder for relative local paths (the reviews file's).

    Raises:
        DataError: ``ref`` looks like a file (it has a data extension or a folder) but
            is not there.
    """
    ref = str(ref)
    path = Path(ref).expanduser()
    for candidate in (path, None if base is None or path.is_absolute() else base / path):
        if candidate is not None and candidate.is_file():
            return str(candidate)
    if ref.startswith("hf://"):
        return ref
    if "/" in ref or "\\" in ref or looks_like_file(ref):
        raise DataError(f"Amazon Reviews 2023 {kind} file not found", ref)
    other = "meta" if kind == "review" else "review"
    if ref.startswith(f"raw_{other}_"):
        raise ValueError(f"{ref!r} names {other} data, given as the {kind} source")
    category = ref.removeprefix(f"raw_{kind}_")
    if kind == "review":
        return f"hf://datasets/{repo}/raw/review_categories/{category}.jsonl"
    return f"hf://datasets/{repo}/raw/meta_categories/meta_{category}.jsonl"


def _first(files) -> str:
    if isinstance(files, dict):
        files = next(iter(files.values()))
    return str(files if isinstance(files, (str, Path)) else next(iter(files)))


def _default_name(source: str, data_files) -> str:
    if data_files is not None:
        return Path(_first(data_files)).name.split(".")[0]
    path = Path(str(source))
    return path.name.split(".")[0] if path.is_file() else str(source)
