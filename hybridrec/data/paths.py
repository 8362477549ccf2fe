"""Where data sets live on disk, and fetching them from their original homes.

Lookup order for a named data set (:func:`resolve_dataset_dir`):

1. an explicit ``path`` (it must exist);
2. ``$HYBRIDREC_DATA/<name>`` when the variable is set and that folder exists;
3. ``<cache>/datasets/<name>``, where the cache is ``$HYBRIDREC_CACHE`` or
   ``~/.cache/hybridrec``; downloaded there first when absent and downloads are allowed.

Downloads are pinned, atomic and resumable (:func:`download_dataset`):

- a :class:`Source` names fixed addresses (GitHub files at a commit, never a branch) and the
  checksums its files must have;
- each file is fetched into ``<cache>/datasets/.<name>.partial/<file>.part``; a download cut
  off leaves that file, and the next attempt asks for the rest with an HTTP ``Range``
  request;
- a complete file whose pinned checksum differs is deleted and a :class:`DataError` names
  the url, the expected and the actual checksum;
- the checked files are moved into a folder that is renamed into place in one step, so an
  interrupted or failed download never leaves a half-written data set.

Local copies (found by ``path``, ``$HYBRIDREC_DATA`` or in the cache) are checked against
the pins too (:func:`check_local_copy`): a pinned file with another checksum gets a warning
naming it, not an error, since users may keep their own versions. Digests are cached by
file size and modification time in ``.hybridrec-checksums.json`` beside the files (under
the cache folder when that folder is read-only), so each file is hashed once.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

log = logging.getLogger("hybridrec.data")

#: Name of the file caching the digests of a folder's pinned files.
CHECKSUM_FILE = ".hybridrec-checksums.json"
#: Checksum kinds a pin may name: ``"sha256:<hex>"``, or ``"git-blob:<hex>"`` (the git
#: object id, SHA-1 of ``b"blob <size>\0"`` + the bytes) where only a repository's own
#: object id could be checked offline.
CHECKSUM_KINDS = ("sha256", "git-blob")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """Where a data set is downloaded from, and the checksums that pin it.

    Attributes:
        urls: the files to fetch, at fixed addresses.
        is_zip: the single url is a zip archive holding one folder named ``folder``.
        folder: the folder inside the archive.
        checksums: ``(file name, "sha256:<hex>" or "git-blob:<hex>")`` pairs. A downloaded
            file (named by its url's last part) with another checksum is an error; the
            data set's files (for a zip, those it holds) are also checked in local copies,
            where a difference is a warning.
    """

    urls: tuple[str, ...]
    is_zip: bool = False
    folder: str = ""
    checksums: tuple[tuple[str, str], ...] = ()

    def pin(self, filename: str) -> str | None:
        """The pinned checksum of ``filename``, or ``None``."""
        return dict(self.checksums).get(filename)


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
        return check_local_copy(p, source)
    root = data_root()
    if root is not None and (root / name).is_dir():
        return check_local_copy(root / name, source)
    target = cache_dir() / "datasets" / name
    if target.is_dir():
        return check_local_copy(target, source)
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
    """Fetch ``source`` into ``target``: resumable, checked, atomic (see the module doc).

    Raises:
        DataError: the network fails (a partial file is kept for the next attempt), a
            file's checksum differs from its pin (the file is deleted), or the archive is
            damaged; the message says how to put the files in place by hand.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{name}.partial"
    partial.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="files-", dir=partial))
    done = False
    try:
        names = []
        for url in source.urls:
            filename = url.rsplit("/", 1)[-1]
            names.append(filename)
            complete = partial / filename
            if complete.is_file() and _matches(complete, source.pin(filename)):
                continue  # fetched and checked by an earlier, interrupted attempt
            part = partial / (filename + ".part")
            _fetch(url, part)
            try:
                _check_download(url, part, source.pin(filename))
            except DataError:  # nothing of this attempt is trusted any more
                shutil.rmtree(partial, ignore_errors=True)
                raise
            os.replace(part, complete)
        files = staging / "files"
        if source.is_zip:
            try:
                with zipfile.ZipFile(partial / names[0]) as zf:
                    zf.extractall(staging / "unzipped")
            except zipfile.BadZipFile:
                (partial / names[0]).unlink()
                raise
            shutil.move(str(staging / "unzipped" / source.folder), str(files))
        else:
            files.mkdir()
            for filename in names:
                os.replace(partial / filename, files / filename)
        try:
            os.rename(files, target)
        except OSError:
            if not target.is_dir():  # another process may have finished first
                raise
        done = True
    except (urllib.error.URLError, OSError, http.client.HTTPException,
            zipfile.BadZipFile) as err:
        kept = any(p.stat().st_size for p in partial.glob("*.part"))
        again = "; the partial download is kept: run again to resume" if kept else ""
        raise DataError(f"could not download data set {name!r} ({err}){again}; "
                        + _manual_hint(name, target, source)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if done:
            shutil.rmtree(partial, ignore_errors=True)
        else:
            _tidy(partial)
    return check_local_copy(target, source)


def _fetch(url: str, part: Path, timeout: float = 60) -> None:
    """Download ``url`` into ``part``, continuing a partial file with an HTTP Range
    request (a server that ignores it sends the whole file, which replaces it)."""
    have = part.stat().st_size if part.exists() else 0
    request = url if not have else urllib.request.Request(url, headers={"Range": f"bytes={have}-"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the partial file is whole
            return
        raise
    with response:
        headers = getattr(response, "headers", None) or {}
        resumed = bool(have) and getattr(response, "status", 200) == 206 \
            and _range_start(headers.get("Content-Range", "")) == have
        length = headers.get("Content-Length")
        with open(part, "ab" if resumed else "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    expected = (have if resumed else 0) + int(length) if length and length.isdigit() else None
    if expected is not None and part.stat().st_size < expected:
        raise http.client.IncompleteRead(b"", expected - part.stat().st_size)


def _range_start(content_range: str) -> int | None:
    """The first byte of ``Content-Range: bytes <first>-<last>/<total>``."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _check_download(url: str, path: Path, pin: str | None) -> None:
    """Delete ``path`` and raise a DataError when its checksum differs from ``pin``."""
    if pin is None:
        log.info("%s: no pinned checksum; downloaded unchecked", url)
        return
    kind, _, expected = pin.partition(":")
    actual = file_digest(path, kind)
    if actual != expected:
        path.unlink()
        raise DataError(f"checksum mismatch for {url}: expected {kind} {expected}, got "
                        f"{actual}; the download was deleted (run again to retry, or put "
                        "the files in place by hand)")


def _matches(path: Path, pin: str | None) -> bool:
    kind, _, expected = (pin or "").partition(":")
    return pin is None or file_digest(path, kind) == expected


def _tidy(partial: Path) -> None:
    """Drop empty partial files, and the partial folder when nothing is left in it."""
    for p in partial.glob("*.part"):
        if p.stat().st_size == 0:
            p.unlink()
    try:
        partial.rmdir()
    except OSError:
        pass  # partial files kept for the next attempt


def file_digest(path: str | Path, kind: str = "sha256") -> str:
    """Hex digest of a file: ``"sha256"``, or ``"git-blob"`` (git's object id)."""
    path = Path(path)
    if kind not in CHECKSUM_KINDS:
        raise ValueError(f"checksum kind must be one of {CHECKSUM_KINDS}, not {kind!r}")
    digest = hashlib.sha256() if kind == "sha256" else \
        hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_local_copy(folder: Path, source: Source | None) -> Path:
    """Check a data set folder's pinned files; log a warning naming each that differs.

    Digests are cached by size and modification time (see the module doc). Returns
    ``folder``.
    """
    pins = {} if source is None else {n: p for n, p in source.checksums
                                      if (Path(folder) / n).is_file()}
    if not pins:
        return folder
    cache = _read_digests(folder)
    changed = False
    for filename, pin in sorted(pins.items()):
        kind, _, expected = pin.partition(":")
        path = Path(folder) / filename
        stat = path.stat()
        entry = cache.get(filename, {})
        if (entry.get("size"), entry.get("mtime_ns")) != (stat.st_size, stat.st_mtime_ns):
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if kind not in entry:
            entry[kind] = file_digest(path, kind)
            changed = True
        cache[filename] = entry
        if entry[kind] != expected:
            log.warning("%s: checksum differs from the pinned original (%s %s, found %s); "
                        "results may differ from the published data set's", path, kind,
                        expected, entry[kind])
    if changed:
        _write_digests(folder, cache)
    return folder


def _digest_files(folder: Path) -> list[Path]:
    """Where a folder's digest cache may be: beside its files, unless the folder is marked
    read-only (no write bit, which even root is held to here), and under the cache."""
    key = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:20]
    fallback = cache_dir() / "checksums" / f"{key}.json"
    try:
        writable = Path(folder).stat().st_mode & 0o222 and os.access(folder, os.W_OK)
    except OSError:
        writable = False
    return [Path(folder) / CHECKSUM_FILE, fallback] if writable else [fallback]


def _read_digests(folder: Path) -> dict:
    cache: dict = {}
    for path in _digest_files(folder):  # the one under the cache folder is the newer
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            cache.update({k: v for k, v in data.items() if isinstance(v, dict)})
    return cache


def _write_digests(folder: Path, cache: dict) -> None:
    """Write the digest cache atomically beside the files, or under the cache folder."""
    for path in _digest_files(folder):
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".checksums-", dir=path.parent)
            with os.fdopen(fd, "w") as f:
                json.dump(cache, f, indent=1, sort_keys=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
            return
        except OSError:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    log.info("%s: could not cache checksums (no writable place)", folder)
