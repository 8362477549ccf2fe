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
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["write_text", "write_json", "write_csv", "save_tensors", "atomic_file", "atomic_folder"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _open_mode(path: Path, base: int) -> None:
    """Give a temporary file (0600) or folder (0700) the mode a plain write would have
    (``base`` less the umask), so colleagues on shared storage can read run folders."""
    os.chmod(path, base & ~_umask())


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto ``path`` when the block ends without
    an error, deleted when it raises. Makes the parent folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
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


def write_json(path: str | os.PathLike, obj, **dumps) -> Path:
    """Write ``json.dumps(obj, **dumps)`` to ``path`` atomically (``indent=2`` unless given)."""
    dumps.setdefault("indent", 2)
    return write_text(path, json.dumps(obj, **dumps))


def write_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write dict rows as CSV atomically; the header is the union of the rows' keys in order
    of first appearance (rows may differ), an empty file for no rows."""
    buf = io.StringIO(newline="")
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
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
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)  # left over from an interrupted save
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
