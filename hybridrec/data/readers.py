"""Read delimited text files into rows of strings, keeping each row's 1-based line number.

Every loader reads its files through here, so that a bad byte or a short row is reported
the same way everywhere: as a :class:`~hybridrec.data.errors.DataError` naming the file and
the line. Parsing the fields into numbers happens in :mod:`hybridrec.data.fields`.

Two readers share one result, the :class:`RawTable`:

- :func:`read_records`, exact and general: quoted fields with separators or newlines,
  blank lines, rows of the wrong length (kept aside for ``on_bad_rows``), each problem
  located by line;
- :func:`~hybridrec.data.columnar.read_columns` (:mod:`.columnar`), the fast path for large plain files: pyarrow's CSV reader reads
  only the columns asked for, straight into ``int64``/``float64`` arrays (a 2M-row file
  loads about 10x faster and in a tenth of the memory than through :func:`read_records`;
  ``benchmarks/load_speed.py``). It declines (returns ``None``) whenever the file holds
  anything that :func:`read_records` would report or read differently, so callers fall
  back to the exact reader and its messages.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError


def require_file(folder: str | Path, filename: str) -> Path:
    """``folder / filename``, or a DataError that lists what the folder holds (hidden
    files, such as the checksum cache, left out)."""
    path = Path(folder) / filename
    if not path.is_file():
        have = sorted(p.name for p in Path(folder).iterdir()
                      if not p.name.startswith(".")) if Path(folder).is_dir() else []
        raise DataError(f"expected file {filename!r} in this folder (it holds {have})",
                        str(folder))
    return path


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The whole file decoded as ``encoding``; a byte-order mark is dropped.

    Raises:
        DataError: the file is missing, or is not valid ``encoding`` (the message names the
            line of the first bad byte).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", str(path)) from None
    except OSError as err:
        raise DataError(f"cannot read file ({err.strerror})", str(path)) from None
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start : err.start + 1]
        raise DataError(
            f"text is not valid {encoding} (byte {bad!r} at offset {err.start}); "
            f"re-save the file as {encoding}",
            str(path),
            line,
        ) from None


class LineRange:
    """Line numbers ``first, first + 1, ...`` of ``n`` records that sit one per line, without
    storing them: indexing with a row gives its line, with a mask or rows an ``int64``
    array, as from the array it stands in for."""

    def __init__(self, first: int, n: int):
        self.first, self.n = first, n

    def __len__(self) -> int:
        return self.n

    def __array__(self, dtype=None, copy=None):
        return np.arange(self.first, self.first + self.n, dtype=dtype or np.int64)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            if not -self.n <= key < self.n:
                raise IndexError(f"row {key} out of range for {self.n} records")
            return self.first + int(key) % self.n
        return np.asarray(self)[key]


@dataclass
class RawTable:
    """Columns of string fields read from one file.

    Attributes:
        path: the file, for error messages.
        columns: column names (from the header, or given by the caller).
        data: one ``object`` array of stripped strings per column; from
            :func:`read_columns`, only the columns asked for, already typed (``int64`` ids
            and times, ``float64`` numbers) where every value converted.
        lines: 1-based line number where each record starts, ``int64 [n]`` (or a
            :class:`LineRange` when records sit one per line); ``None`` for sources without
            lines (parquet), whose messages give 1-based row numbers.
        bad_lines: records dropped for a wrong field count, as ``(line, reason)`` pairs.
        header_line: the line of the header, named by errors about columns (``None`` for
            files without a header and sources without lines).
    """

    path: str
    columns: list[str]
    data: dict[str, np.ndarray]
    lines: np.ndarray | LineRange | None
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    header_line: int | None = None

    def __len__(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0

    def column(self, name: str) -> np.ndarray:
        """One column (``object`` array of strings); a DataError lists the columns if absent."""
        self.require([name])
        return self.data[name]

    def require(self, names: list[str], option: str = "column") -> None:
        """Raise a :class:`DataError` listing the file's columns if any name is absent."""
        missing = [n for n in names if n not in self.data]
        if missing:
            raise DataError(
                f"{option} {missing[0]!r} is not a column of this file; "
                f"its columns are {self.columns}",
                self.path,
                self.header_line,
            )

    def subset(self, keep: np.ndarray) -> "RawTable":
        """The rows where ``keep`` is true."""
        lines = None if self.lines is None else self.lines[keep]
        return RawTable(self.path, self.columns, {k: v[keep] for k, v in self.data.items()},
                        lines, [], self.header_line)


def read_records(
    path: str | Path,
    sep: str = ",",
    *,
    header: bool = True,
    columns: list[str] | None = None,
    encoding: str = "utf-8",
    quoting: bool = True,
) -> RawTable:
    """Split a delimited text file into records of string fields.

    Blank lines are ignored. A record whose field count differs from the header's is not
    returned; its line is listed in ``bad_lines`` so that the caller's ``on_bad_rows``
    policy can raise or skip it.

    Args:
        path: the file.
        sep: field separator; one character, or a longer literal such as ``"::"`` (then
            quoting is off).
        header: the first non-blank line names the columns.
        columns: column names for files without a header (required when ``header`` is
            false).
        encoding: text encoding of the file.
        quoting: honour CSV double quotes (fields with separators or newlines inside).
    """
    path_s = str(path)
    names = None if header else list(columns or [])
    if not header and not names:
        raise ValueError("read_records: give `columns` for a file without a header")
    text = read_text(path, encoding)
    quoted = len(sep) == 1 and quoting and '"' in text
    fast = None if quoted else _regular_records(text, sep, names)
    if fast is not None:
        names, data, lines = fast
        return RawTable(path_s, names, data, lines, [], 1 if header else None)
    if quoted:
        records, line_nos = _csv_records(text, sep, path_s)
    else:
        records = [line.rstrip("\r").split(sep) for line in text.split("\n")]
        line_nos = range(1, len(records) + 1)
    rows: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[int, str]] = []
    header_line = None
    for fields, line in zip(records, line_nos):
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        if names is None:
            names = [f.strip() for f in fields]
            header_line = line
        elif len(fields) != len(names):
            bad.append((line, f"expected {len(names)} fields, found {len(fields)}"))
        else:
            rows.append(fields)
            lines.append(line)
    if names is None:
        raise DataError("file is empty (no header line)", path_s)
    if len(set(names)) != len(names):
        raise DataError(f"the header repeats a column name: {names}", path_s, header_line)
    cols = list(zip(*rows)) if rows else [()] * len(names)
    data = {name: np.array([v.strip() for v in col], dtype=object).reshape(len(rows))
            for name, col in zip(names, cols)}
    return RawTable(path_s, names, data, np.asarray(lines, dtype=np.int64), bad, header_line)


def _regular_records(text: str, sep: str, names: list[str] | None):
    """Fast path for files with one record per line, no quoting, no blank lines and the
    same field count everywhere: ``(names, data, lines)``, or ``None`` if the file is not
    that regular (the caller then takes the slow path, which locates each problem)."""
    if len(sep) > 1:
        if "\x1f" in text:
            return None
        text, sep = text.replace(sep, "\x1f"), "\x1f"
    if len(sep.encode()) != 1 or not text.strip():
        return None
    body = text[:-1] if text.endswith("\n") else text
    buf = np.frombuffer(body.encode("utf-8"), dtype=np.uint8)
    newline = buf == 10
    line_of = np.cumsum(newline)
    is_sep = buf == ord(sep)
    per_line = np.bincount(line_of[is_sep], minlength=int(line_of[-1]) + 1)
    skip = 0
    if names is None:
        names = [f.strip() for f in body.split("\n", 1)[0].rstrip("\r").split(sep)]
        skip = 1
    if not (per_line == len(names) - 1).all() or len(names) < 2 or len(set(names)) < len(names):
        return None
    frame = pd.read_csv(io.StringIO(body), sep=sep, header=None, names=names, dtype=object,
                        skiprows=skip, keep_default_na=False, na_filter=False,
                        quoting=csv.QUOTE_NONE, skip_blank_lines=False, engine="c")
    if len(frame) != len(per_line) - skip:
        return None
    space = (buf == 32) | ((buf == 9) & (sep != "\t"))
    edge = is_sep | newline | (buf == 13)
    padded = bool(space[0] or space[-1] or (space[1:] & edge[:-1]).any()
                  or (space[:-1] & edge[1:]).any())
    # str.strip also takes \x0b, \x0c, \x1c-\x1f and non-ASCII spaces: strip cell by cell
    padded = padded or not text.isascii() or any(
        c in text for c in "\x0b\x0c\x1c\x1d\x1e\x1f" if c != sep)
    data = {}
    for name in names:
        col = frame[name].to_numpy(dtype=object)
        data[name] = np.array([v.strip() for v in col], dtype=object) if padded else col
    return names, data, np.arange(1 + skip, len(per_line) + 1, dtype=np.int64)


def _csv_records(text: str, sep: str, path: str) -> tuple[list[list[str]], list[int]]:
    """Records of CSV text (quoted fields may hold separators and newlines) and the line
    each record starts on; CSV syntax errors -> DataError."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=False)
    records, starts, start = [], [], 1
    try:
        for fields in reader:
            records.append(fields)
            starts.append(start)
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"malformed CSV ({err})", path, reader.line_num) from None
    return records, starts
