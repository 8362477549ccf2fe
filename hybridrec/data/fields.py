"""Turn columns of strings into ids, numbers and timestamps, and apply ``on_bad_rows``.

A :class:`RowChecks` collects every row a parser rejects, with the reason, then either
raises a :class:`~hybridrec.data.errors.DataError` for the earliest bad line
(``on_bad_rows="error"``) or drops the bad rows and logs how many, with the first few line
numbers (``on_bad_rows="skip"``).
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import pandas as pd

from .errors import DataError

log = logging.getLogger("hybridrec.data")

BAD_ROW_POLICIES = ("error", "skip")


class RowChecks:
    """Bad rows found while parsing one file, and the policy that settles them.

    Args:
        path: the file, for messages.
        lines: 1-based line number of each row (``None`` for sources without lines, such
            as parquet; messages then say "row" and give the 1-based row number).
        on_bad_rows: ``"error"`` or ``"skip"``.
        bad_lines: rows already dropped by the reader, as ``(line, reason)`` pairs.
    """

    def __init__(self, path: str, lines: np.ndarray | None, n_rows: int, on_bad_rows: str,
                 bad_lines: list[tuple[int, str]] | None = None):
        if on_bad_rows not in BAD_ROW_POLICIES:
            raise ValueError(f"on_bad_rows must be one of {BAD_ROW_POLICIES}, not {on_bad_rows!r}")
        self.path = path
        self.lines = lines
        self.n_rows = n_rows
        self.policy = on_bad_rows
        self.bad = np.zeros(n_rows, dtype=bool)
        self._reasons: list[tuple[int, str]] = list(bad_lines or [])
        self._reader_bad = len(self._reasons)

    def _line(self, row: int) -> int:
        return int(self.lines[row]) if self.lines is not None else row + 1

    def flag(self, mask: np.ndarray, describe: Callable[[int], str]) -> None:
        """Mark rows where ``mask`` is true as bad; ``describe(row)`` says why."""
        new = mask & ~self.bad
        if new.any():
            first = int(np.flatnonzero(new)[0])
            self._reasons.append((self._line(first), describe(first)))
            self.bad |= mask

    def resolve(self) -> np.ndarray:
        """Raise for the earliest bad row, or return the mask of rows to keep (and log)."""
        n_bad = int(self.bad.sum()) + self._reader_bad
        if n_bad == 0:
            return ~self.bad
        if self.policy == "error":
            line, reason = min(self._reasons)
            where = line if self.lines is not None else None
            msg = reason if self.lines is not None else f"row {line}: {reason}"
            raise DataError(
                f"{msg} (pass on_bad_rows='skip' to skip such rows)", self.path, where
            )
        lines = sorted([ln for ln, _ in self._reasons[: self._reader_bad]]
                       + [self._line(int(r)) for r in np.flatnonzero(self.bad)[:5]])
        unit = "line" if self.lines is not None else "row"
        log.warning("%s: skipped %d bad rows (first at %s %s)", self.path, n_bad, unit,
                    ", ".join(map(str, lines[:5])))
        return ~self.bad


def parse_ids(values: np.ndarray, column: str, checks: RowChecks) -> np.ndarray:
    """External ids: ``int64`` when every value is a plain integer, else strings.

    Empty values are flagged as bad rows. An integer array (a column
    :func:`~hybridrec.data.columnar.read_columns` already converted) is returned as is.
    """
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64, copy=False)
    empty = np.asarray(values == "", dtype=bool).reshape(len(values))
    checks.flag(empty, lambda r: f"missing value in column {column!r}")
    bad = empty
    if "\x00" in "".join(values.tolist()):  # numpy strings would drop a trailing NUL
        nul = pd.Series(values, dtype=object).str.contains("\x00", regex=False).to_numpy(bool)
        checks.flag(nul, lambda r: f"NUL character in {values[r]!r} in column {column!r}")
        bad = empty | nul
    ints = as_int_ids(values[~bad])
    if ints is not None:
        out = np.zeros(len(values), dtype=np.int64)
        out[~bad] = ints
        return out
    return values.astype(str).astype(object)


_POW10 = 10 ** np.arange(19, dtype=np.int64)


def as_int_ids(values: np.ndarray) -> np.ndarray | None:
    """``int64`` ids if every value is a plain integer (``"42"``, not ``"042"``/``"+42"``),
    else ``None``; vectorised, as data sets have millions of rows."""
    if len(values) == 0:
        return None
    try:
        text = np.asarray(values.tolist(), dtype=str)
        text.astype("S")  # ASCII only: int() also reads other scripts' digits
        ints = text.astype(np.int64)
    except (ValueError, OverflowError, UnicodeEncodeError):
        return None
    digits = np.maximum(1, np.searchsorted(_POW10, np.abs(ints), side="right"))
    lengths = np.strings.str_len(text)
    if not np.array_equal(lengths, digits + (ints < 0)):
        return None
    if int(lengths.sum()) != sum(map(len, values.tolist())):  # a NUL numpy dropped
        return None
    return ints


def parse_numbers(values: np.ndarray, column: str, checks: RowChecks) -> np.ndarray:
    """Finite floats; empty or unparsable values are flagged as bad rows (a ``float64``
    array, already converted, is only checked for non-finite values)."""
    if values.dtype.kind == "f":
        num = values.astype(np.float64, copy=False)
    else:
        num = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(np.float64)
    checks.flag(~np.isfinite(num),
                lambda r: f"cannot read {str(values[r])!r} in column {column!r} as a number")
    return num


#: Unix times at or beyond this size are bad rows: a float64 no longer holds them exactly, and
#: beyond 2**63 they would wrap to negative ``int64`` times (the latest row the earliest).
MAX_UNIX_TIME = 2.0 ** 53


def parse_timestamps(values: np.ndarray, column: str, checks: RowChecks) -> np.ndarray:
    """Unix seconds, ``int64``, from unix numbers or ISO 8601 date strings.

    If most non-empty values are numbers, values are unix seconds (fractions are dropped)
    and the others are bad. Otherwise every value must be an ISO 8601 date or date-time;
    one without a time zone is read as UTC. Empty or unparsable values are bad rows. An
    integer array (unix seconds :func:`~hybridrec.data.columnar.read_columns` already
    converted) is only checked for range.
    """
    if np.issubdtype(values.dtype, np.integer):
        huge = (values >= MAX_UNIX_TIME) | (values <= -MAX_UNIX_TIME)
        checks.flag(huge, lambda r: f"timestamp {str(values[r])!r} in column {column!r} is out "
                    "of range (|t| < 2**53 unix seconds)")
        values = values.astype(np.int64, copy=False)
        return np.where(huge, 0, values) if huge.any() else values
    s = pd.Series(values, dtype=object)
    num = pd.to_numeric(s, errors="coerce").to_numpy(np.float64)
    present = np.asarray(s.to_numpy() != "", dtype=bool)
    if np.isfinite(num[present]).sum() * 2 >= present.sum():
        bad = ~np.isfinite(num)
        huge = ~bad & (np.abs(np.where(bad, 0, num)) >= MAX_UNIX_TIME)
        checks.flag(
            bad | huge,
            lambda r: f"missing timestamp in column {column!r}" if values[r] == ""
            else f"timestamp {values[r]!r} in column {column!r} is out of range (|t| < 2**53 unix seconds)"
            if huge[r] else f"cannot read {values[r]!r} in column {column!r} as a unix time",
        )
        bad |= huge
        return np.floor(np.where(bad, 0, num)).astype(np.int64)
    dt = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True)
    bad = dt.isna().to_numpy()
    checks.flag(
        bad,
        lambda r: f"cannot read {values[r]!r} in column {column!r} as a unix time or an "
        f"ISO 8601 date",
    )
    secs = np.zeros(len(values), dtype=np.int64)
    if (~bad).any():
        ok = dt[~bad]
        epoch = pd.Timestamp("1970-01-01", tz="UTC")
        secs[~bad] = ((ok - epoch) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    return secs
