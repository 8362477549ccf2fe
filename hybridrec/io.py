"""The one atomic writer: text, JSON, CSV, safetensors files and whole folders.

Every file hybridrec writes (run folders, saved models, candidate lists, embedding caches,
converted LLM folders) goes through here. A file is written to a temporary name in its
target folder and renamed into place with ``os.replace``, so a reader never sees half a
file and an interrupted write leaves the old one; a folder is built under a temporary name
and swapped in the same way.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import math
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["clean_stale", "write_text", "write_json", "json_safe", "csv_cell", "write_csv", "save_tensors", "atomic_file", "atomic_folder"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _open_mode(path: Path, base: int) -> None:
    """Give a temporary file (0600) or folder (0700) the mode a plain write would have
    (``base`` less the umask), so colleagues on shared storage can read run folders."""
    os.chmod(path, base & ~_umask())


_HOST = socket.gethostname().replace("-", "_") or "host"


def _owner_tag() -> str:
    """``<host>-<pid>``: temporary names carry their writer, so a later write can tell a
    dead writer's leftovers from a live one's work in progress."""
    return f"{_HOST}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def clean_stale(path: str | os.PathLike) -> list[Path]:
    """Remove what interrupted writes of ``path`` left beside it: temporary files and
    folders, and the moved-aside old copy, of writers on this host that are no longer
    running. When ``path`` itself is missing because a writer died between moving the old
    copy aside and putting the new one in place, the old copy is put back. Returns the
    removed paths. Called before every atomic write and before a model is loaded."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for p in sorted(path.parent.glob(f".{glob.escape(path.name)}.*-*-*")):
        kind, _, rest = p.name[len(path.name) + 2:].partition("-")
        host, _, pid = rest.partition("-")
        pid = pid.split("-")[0].split(".")[0]
        if kind not in ("tmp", "old") or host != _HOST or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if kind == "old" and not path.exists() and p.is_dir():
            os.replace(p, path)  # the new copy never arrived: the old one is the last complete save
            continue
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto ``path`` when the block ends without
    an error, deleted when it raises. Makes the parent folder if needed; leftovers of
    earlier interrupted writes are removed first (:func:`clean_stale`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{_owner_tag()}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _open_mode(Path(tmp), 0o666)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_safe(obj):
    """``obj`` with NaN as ``null`` and infinities as ``"inf"``/``"-inf"``: JSON has no
    NaN, and files with bare ``NaN`` break strict readers (browsers, jq, other languages)."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        return obj if math.isfinite(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj, **dumps) -> Path:
    """Write ``json.dumps(obj, **dumps)`` to ``path`` atomically (``indent=2`` unless given);
    always valid JSON (:func:`json_safe`)."""
    dumps.setdefault("indent", 2)
    default = dumps.get("default")
    if default is not None:  # objects json cannot encode are converted first, then made safe
        obj = json.loads(json.dumps(obj, default=default))
    return write_text(path, json.dumps(json_safe(obj), allow_nan=False, **dumps))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A cell a spreadsheet will not run: text starting like a formula (``=cmd|...``,
    ``+``, ``-``, ``@``) gets a leading ``'``; numbers, and text that reads as a number
    (``-1.5``), are left as they are."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def write_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write dict rows as CSV atomically; the header is the union of the rows' keys in order
    of first appearance (rows may differ), an empty file for no rows. Formula-like text
    cells are escaped (:func:`csv_cell`)."""
    buf = io.StringIO(newline="")
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
    with atomic_file(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            f.write(buf.getvalue())
    return Path(path)


def save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Write named tensors to a safetensors file atomically (contiguous CPU copies)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_file(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def atomic_folder(path: str | os.PathLike, fill: Callable[[Path], None], replace: bool = True) -> Path:
    """Build folder ``path`` atomically: ``fill(tmp)`` writes the files into a temporary
    folder beside it, which then replaces ``path`` (an older folder is moved aside first and
    deleted after the swap). A failing ``fill`` leaves ``path`` as it was.

    With ``replace=False`` the folder is built once: if another process put ``path`` in
    place while ``fill`` ran, its folder is kept and this one is dropped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{_owner_tag()}-", dir=path.parent))
    try:
        fill(tmp)
        _open_mode(tmp, 0o777)
        if not replace:
            try:
                os.rename(tmp, path)
            except OSError:
                if not path.is_dir():  # another process may have finished first
                    raise
        elif path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-{_owner_tag()}-", dir=path.parent))
            os.replace(path, old)  # an empty folder: replaced
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
