"""The fast path for large plain interaction files: pyarrow's CSV reader reads only the
columns asked for, straight into ``int64``/``float64`` arrays, into the same
:class:`~hybridrec.data.readers.RawTable` the exact reader gives (a 2M-row file loads about
10x faster and in a tenth of the memory; ``benchmarks/load_speed.py``).

:func:`read_columns` declines (returns ``None``) whenever the file holds anything that
:func:`~hybridrec.data.readers.read_records` would report or read differently, so callers
fall back to the exact reader and its messages (file, line, column).
"""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np

from .fields import MAX_UNIX_TIME
from .readers import LineRange, RawTable


#: What :func:`read_columns` makes of a column: ``"id"`` (``int64`` when every value is a
#: plain integer, else stripped strings), ``"number"`` (``float64``), ``"time"`` (``int64``
#: unix seconds, the floor of a number).
COLUMN_KINDS = ("id", "number", "time")
_SCAN_CHUNK = 1 << 20  # bytes per read while checking that a file is plain
#: pyarrow block size: its streaming reader parses about 30 blocks ahead, so this bounds
#: the memory it holds (15 MB) at little cost in speed (measured 256 KiB to 4 MiB blocks).
_BLOCK = 1 << 19


def read_columns(
    path: str | Path,
    sep: str,
    kinds: dict[str, str],
    *,
    header: bool = True,
    columns: list[str] | None = None,
    encoding: str = "utf-8",
) -> RawTable | None:
    """The columns named in ``kinds``, read by pyarrow straight into typed arrays; ``None``
    when the file is not plain enough for that (the caller then uses :func:`read_records`).

    A file qualifies when it is UTF-8 without double quotes, blank lines or carriage returns
    outside CRLF line ends, every row has the header's field count, and every ``"number"``
    and ``"time"`` value converts to a finite float (times below ``2**53``). Then record
    ``k`` (0-based) is on line ``k + 2`` (``k + 1`` without a header), so line numbers in
    later messages stay exact. ``"id"`` columns become ``int64`` only when every value reads
    back as the same text (``"42"``; not ``"042"``, ``"+42"`` or ``" 42"``), as in
    :func:`~hybridrec.data.fields.as_int_ids`; otherwise they hold the stripped strings
    :func:`read_records` would give, and the parsers judge them as usual.

    Args:
        path: the file.
        sep: field separator: one character, or one repeated (MovieLens 1M's ``"::"``,
            read as that character with empty fields between, which must stay empty).
        kinds: ``{column: kind}``, kinds from :data:`COLUMN_KINDS`. Only these columns are
            converted; those the file lacks are left out, for :meth:`RawTable.require` to
            report.
        header: the first line names the columns.
        columns: column names for a file without a header.
        encoding: the file's encoding; only UTF-8 files take this path.
    """
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    if len(set(sep)) != 1 or not sep.isascii() or sep[0] in '"\r\n' or not utf8:
        return None
    scan = _scan_plain(Path(path), sep, header)
    if scan is None:
        return None
    names, n_lines = scan
    names = names if header else list(columns or [])
    n = n_lines - int(header)
    wanted = {c: k for c, k in kinds.items() if c in names}
    if n < 1 or not wanted or len(names) < 2 or len(set(names)) < len(names):
        return None
    import pyarrow as pa  # imported here: only large plain files need it

    try:
        data = _read_typed(path, sep, names, wanted, header, n)
    except (pa.ArrowException, OSError, ValueError):  # malformed: the exact reader says where
        return None
    finally:
        pa.default_memory_pool().release_unused()  # the blocks' memory, back to the system
    if data is None:
        return None
    return RawTable(str(path), names, data, LineRange(1 + int(header), n), [],
                    1 if header else None)


def _scan_plain(path: Path, sep: str, header: bool) -> tuple[list[str] | None, int] | None:
    """``(header names, number of lines)`` if the file is valid UTF-8 with no double quote,
    no lone carriage return and a non-blank first line; else ``None``. Reads in chunks, so
    the check costs a pass over the bytes but not a copy of the file in memory."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    n_newline = n_cr = n_crlf = 0
    names, last = None, b""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_SCAN_CHUNK):
                if not last:  # first chunk: the header line
                    line = chunk.split(b"\n", 1)[0]
                    if not line.strip() or len(line) == _SCAN_CHUNK:
                        return None
                    if header:
                        text = line.decode("utf-8-sig").rstrip("\r")
                        names = [f.strip() for f in text.split(sep)]
                if b'"' in chunk:
                    return None
                n_newline += chunk.count(b"\n")
                if b"\r" in chunk:
                    n_cr += chunk.count(b"\r")
                    n_crlf += chunk.count(b"\r\n")
                n_crlf += last == b"\r" and chunk[:1] == b"\n"
                if not chunk.isascii():
                    decoder.decode(chunk)
                last = chunk[-1:]
            decoder.decode(b"", final=True)
    except (OSError, UnicodeDecodeError):
        return None
    if n_cr != n_crlf or not last:
        return None
    return names, n_newline + (last != b"\n")


def _read_typed(path, sep: str, names: list[str], wanted: dict[str, str], header: bool,
                n: int) -> dict[str, np.ndarray] | None:
    """Stream the file through pyarrow in blocks, filling one preallocated array per
    column; ``None`` as soon as a value will not do (pyarrow's own errors propagate)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    # "a::b" is read as "a", "", "b" with ":" as the separator: one gap field per extra
    # character, which must be empty (a ":" inside a value shifts or fills a gap).
    fields, gaps = [], []
    for i, name in enumerate(names):
        if i:
            gaps += [f"\x00gap {i}.{j}" for j in range(len(sep) - 1)]
            fields += gaps[len(gaps) - len(sep) + 1:]
        fields.append(name)
    types = {c: pa.string() if k == "id" else pa.float64() for c, k in wanted.items()}
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=fields, skip_rows=int(header),
                                       block_size=_BLOCK),
        parse_options=pacsv.ParseOptions(delimiter=sep[0], quote_char=False,
                                         double_quote=False, escape_char=False,
                                         newlines_in_values=False),
        convert_options=pacsv.ConvertOptions(
            include_columns=list(wanted) + gaps, null_values=[], strings_can_be_null=False,
            column_types={**types, **{g: pa.string() for g in gaps}}),
    )
    cols = {c: _Column(kind, n) for c, kind in wanted.items()}
    filled = 0
    for batch in reader:
        if filled + batch.num_rows > n:
            return None
        for name, col in cols.items():
            if not col.put(batch.column(name), filled):
                return None
        if any(pc.max(pc.binary_length(batch.column(g))).as_py() for g in gaps):
            return None
        filled += batch.num_rows
    return {c: col.values for c, col in cols.items()} if filled == n else None


class _Column:
    """One typed column of :func:`read_columns`, filled a block of rows at a time."""

    def __init__(self, kind: str, n: int):
        if kind not in COLUMN_KINDS:
            raise ValueError(f"column kind must be one of {COLUMN_KINDS}, not {kind!r}")
        self.kind = kind
        self.values = np.empty(n, dtype=np.float64 if kind == "number" else np.int64)

    def put(self, arr, start: int) -> bool:
        """Store pyarrow array ``arr`` at ``start``; False if a value will not do."""
        end = start + len(arr)
        if arr.null_count:
            return False
        if self.kind == "id":
            ints = None if self.values.dtype == object else _plain_ints(arr)
            if ints is not None:
                self.values[start:end] = ints
                return True
            if self.values.dtype != object:  # from here on strings; plain ints read back
                done = self.values[:start].astype(str).astype(object)
                self.values = np.empty(len(self.values), dtype=object)
                self.values[:start] = done
            self.values[start:end] = [v.strip() for v in arr.to_pylist()]
            return True
        x = arr.to_numpy()
        if not np.isfinite(x).all():
            return False
        if self.kind == "time":
            if (np.abs(x) >= MAX_UNIX_TIME).any():
                return False
            x = np.floor(x)
        self.values[start:end] = x
        return True


def _plain_ints(arr) -> np.ndarray | None:
    """``int64`` values of a pyarrow string array if each value is a plain integer."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(arr) == 0:
        return np.zeros(0, dtype=np.int64)
    try:
        ints = pc.cast(arr, pa.int64())  # digits with an optional "-", or "0x" hex
    except pa.ArrowInvalid:
        return None
    # What the cast takes beyond str(int): leading zeros, "-0" and hex, all starting "0?"
    # or "-0". Every value has a byte here, since the cast refuses empty strings.
    offsets = np.frombuffer(arr.buffers()[1], np.int32, len(arr) + 1, arr.offset * 4)
    data = np.frombuffer(arr.buffers()[2], np.uint8)
    odd = np.flatnonzero(data[offsets[:-1]] <= 48)  # "-" or "0" first: look closer
    if len(odd):
        start, length = offsets[odd], offsets[odd + 1] - offsets[odd]
        first, second = data[start], data[np.minimum(start + 1, len(data) - 1)]
        if (((first == 48) & (length > 1)) | ((first == 45) & (second == 48))).any():
            return None
    return ints.to_numpy()
