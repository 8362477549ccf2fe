"""The data set registry: :func:`load_dataset` by name, with options checked per data set.

This is the one place that knows data sets by name; the loaders behind it work on folders
and files and know nothing of names.

=================== ========================================== ==========================
name                files (in the data set's folder)           text / time
=================== ========================================== ==========================
``synthetic``       none: generated (:mod:`.synthetic`)        yes / yes
``ml-100k``         ``u.data``, ``u.item``                     titles, genres / yes
``ml-1m``           ``ratings.dat``, ``movies.dat``            titles, genres / yes
``ml-latest-small`` ``ratings.csv``, ``movies.csv``,           titles, genres, tags / yes
                    ``tags.csv``
``gowalla``,        ``train.txt``, ``test.txt`` (LightGCN      none / none; the paper's
``yelp2018``,       format)                                    split in ``meta["fold"]``
``amazon-book``
``csv``             ``interactions=`` file, optional           from the items file / if
                    ``items=`` file (CSV, TSV or parquet)      ``time_col`` is given
``huggingface``     path: a hub name, or a local file read     from ``items=`` / if
                    by ``datasets`` (:func:`.hf.load_hf`)      ``time_col`` is given
``amazon-2023``     path: the reviews file or category,        title, description,
                    ``meta=``: the metadata (Amazon Reviews    genres from ``meta`` / yes
                    2023 layout, :func:`.hf.load_amazon2023`)
=================== ========================================== ==========================
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Callable

from .build import LoadOptions
from .hf import load_amazon2023, load_hf
from .interactions import Interactions
from .lightgcn_format import load_lightgcn
from .movielens import load_ml_1m, load_ml_100k, load_ml_latest
from .paths import Source, resolve_dataset_dir
from .synthetic import generate_synthetic
from .tabular import load_csv

#: Cleaning options every file loader takes (see :class:`~hybridrec.data.build.LoadOptions`).
CLEANING_OPTIONS = tuple(f.name for f in fields(LoadOptions))
_NO_RATINGS = tuple(o for o in CLEANING_OPTIONS if o not in ("rating_threshold", "missing_items"))


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one named data set.

    Attributes:
        name: registry name.
        load: ``(folder, LoadOptions) -> Interactions`` for folder data sets; for
            ``"generated"`` and ``"files"`` ones, the function taking the options itself.
        options: the option names :func:`load_dataset` accepts for it.
        kind: ``"folder"`` (found by :func:`~hybridrec.data.paths.resolve_dataset_dir`),
            ``"generated"`` or ``"files"`` (``csv``, ``huggingface``, ``amazon-2023``: the
            path is handed to the loader as given).
        source: where a folder data set is downloaded from (None: it is not).
    """

    name: str
    load: Callable[..., Interactions]
    options: tuple[str, ...]
    kind: str = "folder"
    source: Source | None = None


def _folder(name: str, load, source: Source | None = None, options=CLEANING_OPTIONS) -> DatasetSpec:
    return DatasetSpec(name, load, (*options, "download"), source=source)


_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
#: The LightGCN authors' repository at a fixed commit (its last, 2023-03-20; the data files
#: last changed in bda8fab), not the moving ``master`` branch.
LIGHTGCN_COMMIT = "947ca2b3b1d2d3545b114145710cb06c4e57b3d2"
_LIGHTGCN = f"https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/{LIGHTGCN_COMMIT}/data/"

#: Checksums of the files the loaders read. MovieLens: SHA-256 of the files inside the
#: GroupLens zips (the zips themselves could not be checked offline, so a download is
#: unpacked and then compared, a difference being a warning); no pins for ml-1m (no copy to
#: check against). LightGCN sets: ``test.txt`` by SHA-256, and ``train.txt`` by its git blob
#: id at the commit above (the repository's own checksum; no byte-identical copy was at
#: hand to take a SHA-256 from). Sources: GroupLens originals and the repository's tree,
#: checked against the copies in the project's shared data folder.
PINS = {
    "ml-100k": (
        ("u.data", "sha256:06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
        ("u.item", "sha256:553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
    ),
    "ml-latest-small": (
        ("ratings.csv", "sha256:aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646"),
        ("movies.csv", "sha256:5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07"),
        ("tags.csv", "sha256:92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d"),
    ),
    "gowalla": (
        ("train.txt", "git-blob:a27782bd7a1d4d0744148dc0460ea94da74763f2"),
        ("test.txt", "sha256:099a2a73924e4b754dc6efd730d764f492321b53c38eb93298850c83acf57be3"),
    ),
    "yelp2018": (
        ("train.txt", "git-blob:cda12361055ba448ae4bd1070f6000c16dea8f22"),
        ("test.txt", "sha256:9cd9b37926cd1447a06625ffa7914527573fb097c10cb0bbdb1d1b8ded3742fe"),
    ),
    "amazon-book": (
        ("train.txt", "git-blob:6ef55159c5f1fd7f6d86eb9ff290d0cc2854ac99"),
        ("test.txt", "sha256:6250754994dd953b91b48dccdd77a73f318e0634b4757c2abfcc9d33a54ab0f5"),
    ),
}


def _grouplens(name: str) -> Source:
    return Source((f"{_GROUPLENS}{name}.zip",), is_zip=True, folder=name,
                  checksums=PINS.get(name, ()))


def _lightgcn(name: str) -> Source:
    return Source(tuple(f"{_LIGHTGCN}{name}/{f}" for f in ("train.txt", "test.txt")),
                  checksums=PINS[name])


_CSV_OPTIONS = tuple(p for p in inspect.signature(load_csv).parameters
                     if p not in ("path", "options"))


def _named_options(load, *skip: str) -> tuple[str, ...]:
    """A loader's keyword options; its ``**load_kwargs`` arrive as one ``load_kwargs`` dict."""
    params = inspect.signature(load).parameters.values()
    return (*(p.name for p in params if p.kind == p.KEYWORD_ONLY and p.name not in skip),
            "load_kwargs")


def _hugging_face(load, what: str):
    """``(path, options, load_kwargs=None, **named)`` for a ``datasets`` loader."""
    def run(path, *, options: LoadOptions, load_kwargs: dict | None = None, **named):
        if path is None:
            raise ValueError(f"the {what} data set needs a path: a local file or a hub name")
        return load(str(path), options=options, **named, **dict(load_kwargs or {}))
    return run

DATASETS: dict[str, DatasetSpec] = {
    "synthetic": DatasetSpec("synthetic", generate_synthetic,
                             tuple(inspect.signature(generate_synthetic).parameters), "generated"),
    "ml-100k": _folder("ml-100k", load_ml_100k, _grouplens("ml-100k")),
    "ml-1m": _folder("ml-1m", load_ml_1m, _grouplens("ml-1m")),
    "ml-latest-small": _folder("ml-latest-small", partial(load_ml_latest, name="ml-latest-small"),
                               _grouplens("ml-latest-small")),
    **{name: _folder(name, partial(load_lightgcn, name=name), _lightgcn(name), _NO_RATINGS)
       for name in ("gowalla", "yelp2018", "amazon-book")},
    "csv": DatasetSpec("csv", load_csv, (*CLEANING_OPTIONS, *_CSV_OPTIONS), "files"),
    "huggingface": DatasetSpec(
        "huggingface", _hugging_face(load_hf, "huggingface"),
        (*CLEANING_OPTIONS, *_named_options(load_hf, "options")), "files"),
    "amazon-2023": DatasetSpec(
        "amazon-2023", _hugging_face(load_amazon2023, "amazon-2023"),
        (*CLEANING_OPTIONS, "meta", *_named_options(load_amazon2023, "options",
                                                    "rating_threshold")), "files"),
}

#: Every name :func:`load_dataset` knows.
DATASET_NAMES = tuple(DATASETS)


def load_dataset(name: str, path: str | Path | None = None, **options) -> Interactions:
    """Load a data set by registry name.

    Args:
        name: one of :data:`DATASET_NAMES`.
        path: the data set's folder (for ``csv``: a folder or the interactions file; for
            ``huggingface``: a hub name or a local file; for ``amazon-2023``: the reviews
            file or category);
            ``None`` looks in ``$HYBRIDREC_DATA/<name>``, then the download cache, and
            downloads when allowed (``download=False`` turns that off).
        **options: cleaning options (:data:`CLEANING_OPTIONS`: ``rating_threshold``,
            ``min_user_interactions``, ``min_item_interactions``, ``duplicates``,
            ``on_bad_rows``, ``missing_items``), ``download``, and the data set's own (the
            ``csv`` column names; :func:`~hybridrec.data.synthetic.generate_synthetic`'s
            arguments for ``synthetic``; :func:`~hybridrec.data.hf.load_hf`'s and
            :func:`~hybridrec.data.hf.load_amazon2023`'s, with ``load_kwargs`` a dict for
            ``datasets.load_dataset``).

    Raises:
        ValueError: unknown name or option (the message lists the valid ones).
        DataError: missing or malformed files.
    """
    spec = DATASETS.get(name)
    if spec is None:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ValueError(
            f"data set {name!r} takes no option {unknown[0]!r}; its options are: "
            f"{', '.join(spec.options)}"
        )
    if spec.kind == "generated":
        if path is not None:
            raise ValueError("the synthetic data set is generated; it takes no path")
        return spec.load(**options)
    cleaning = LoadOptions(**{k: v for k, v in options.items() if k in CLEANING_OPTIONS})
    rest = {k: v for k, v in options.items() if k not in CLEANING_OPTIONS}
    if spec.kind == "files":
        return spec.load(path, options=cleaning, **rest)
    folder = resolve_dataset_dir(name, path, download=rest.get("download", True), source=spec.source)
    return spec.load(folder, cleaning)
