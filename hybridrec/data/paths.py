"""Where data sets live on disk, and fetching them from their original homes.

Lookup order for a named data set (:func:`resolve_dataset_dir`):

1. an explicit ``path`` (it must exist);
2. ``$HYBRIDREC_DATA/<name>`` when the variable is set and that folder exists;
3. ``<cache>/datasets/<name>``, where the cache is ``$HYBRIDREC_CACHE`` or
   ``~/.cache/hybridrec``; downloaded there first when absent and downloads are allowed.

Downloads go to a temporary folder next to the target and are renamed into place only
when complete, so an interrupted download never leaves a half-written data set behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError



@dataclass(frozen=True)
class Source:
    """Where a data set is downloaded from.

    Attributes:
        urls: the files to fetch.
        is_zip: the single url is a zip archive holding one folder named ``folder``.
        folder: the folder inside the archive.
    """

    urls: tuple[str, ...]
    is_zip: bool = False
    folder: str = ""


def data_root() -> Path | None:
    """The folder named by ``$HYBRIDREC_DATA``, or ``None`` when the variable is unset."""
    value = os.environ.get("HYBRIDREC_DATA", "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """``$HYBRIDREC_CACHE`` or ``~/.cache/hybridrec`` (not created here)."""
    value = os.environ.get("HYBRIDREC_CACHE", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "hybridrec"


def resolve_dataset_dir(name: str, path: str | Path | None = None, download: bool = True,
                        source: Source | None = None) -> Path:
    """The folder holding data set ``name``'s files, downloading them if needed.

    Args:
        name: a registry name (:data:`~hybridrec.data.loaders.DATASETS`).
        path: an explicit folder; used as is and must exist.
        download: fetch the data set into the cache when no local copy is found.
        source: where to fetch it from (the registry entry's ``source``); None: it cannot
            be downloaded.

    Raises:
        DataError: ``path`` does not exist, or no copy is found and the download is off or
            fails; the message says where to put the files by hand.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.exists():
            raise DataError(f"data set folder for {name!r} does not exist", str(p))
        return p
    root = data_root()
    if root is not None and (root / name).is_dir():
        return root / name
    target = cache_dir() / "datasets" / name
    if target.is_dir():
        return target
    if source is None or not download:
        why = "downloads are off" if source is not None else "it cannot be downloaded"
        raise DataError(
            f"data set {name!r} not found and {why}; " + _manual_hint(name, target, source)
        )
    return download_dataset(name, target, source)


def _manual_hint(name: str, target: Path, source: Source | None) -> str:
    fetch = f"download {', '.join(source.urls)}" if source else "get its files"
    return (
        f"{fetch}, put the files in {target} (or in a folder {name}/ under a directory "
        f"named by HYBRIDREC_DATA), or pass path= to the loader"
    )


def download_dataset(name: str, target: Path, source: Source) -> Path:
    """Fetch ``source`` into ``target`` atomically; see :func:`resolve_dataset_dir`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        files = tmp / "files"
        files.mkdir()
        for url in source.urls:
            dest = tmp / url.rsplit("/", 1)[-1]
            with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
                shutil.copyfileobj(resp, out)
            if source.is_zip:
                with zipfile.ZipFile(dest) as zf:
                    zf.extractall(tmp / "unzipped")
                shutil.move(str(tmp / "unzipped" / source.folder), str(files / "x"))
                files = files / "x"
            else:
                shutil.move(str(dest), str(files / dest.name))
        try:
            os.rename(files, target)
        except OSError:
            if not target.is_dir():  # another process may have finished first
                raise
    except (urllib.error.URLError, OSError, zipfile.BadZipFile) as err:
        raise DataError(
            f"could not download data set {name!r} ({err}); " + _manual_hint(name, target, source)
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
