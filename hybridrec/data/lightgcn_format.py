"""The LightGCN repository's format (``gowalla``, ``yelp2018``, ``amazon-book``).

A folder holds ``train.txt`` and ``test.txt``; each line is ``user item item ...`` with
0-based integer ids, whitespace-separated. A line with a user and no items is allowed (the
user is known but has no interactions in that file). The two files become one
:class:`Interactions` whose ``meta["fold"]`` (``int8``: 0 train, 1 test) records the
paper's split for :func:`~hybridrec.data.splits.make_split` ``kind="given"``. There are no
timestamps, ratings or item text. The file ids are the external ids, and since
vocabularies sort ids numerically, index ``i`` is id ``i`` whenever the ids are contiguous.

Parsing is vectorised over the file's bytes (about 0.3 s for Gowalla's 1M interactions).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .build import LoadOptions, build_interactions
from .errors import DataError
from .interactions import Interactions
from .readers import require_file

log = logging.getLogger("hybridrec.data")

_MAX_DIGITS = 18  # int64 holds every 18-digit number


def parse_user_item_lines(path: str | Path, on_bad_rows: str = "error"):
    """Parse one ``user item item ...`` file.

    Returns:
        ``(users, items, lines, listed_users)``: user and item id per interaction, the
        1-based line of each, and the user id of every non-blank line.

    Raises:
        DataError: a token is not a non-negative integer (with ``on_bad_rows="error"``);
            with ``"skip"`` such lines are dropped whole and counted in the log.
    """
    path = Path(path)
    try:
        buf = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except OSError as err:
        raise DataError(f"cannot read file ({err.strerror})", str(path)) from None
    newline = buf == 10
    line_of = np.cumsum(newline) - newline  # 0-based line of each byte
    starts, ends, space = _token_bounds(buf)
    bad_byte = ~(space | ((buf >= 48) & (buf <= 57)))
    too_long = (ends - starts) > _MAX_DIGITS
    bad_lines = np.union1d(line_of[bad_byte], line_of[starts[too_long]])
    if len(bad_lines):
        first = int(bad_lines[0])
        if on_bad_rows == "error":
            raise DataError(
                f"malformed token {_bad_token(buf, line_of, first)!r}: ids must be "
                "non-negative integers (pass on_bad_rows='skip' to skip such lines)",
                str(path), first + 1,
            )
        log.warning("%s: skipped %d malformed lines (first at line %s)", path, len(bad_lines),
                    ", ".join(str(x + 1) for x in bad_lines[:5]))
        buf = buf.copy()
        buf[np.isin(line_of, bad_lines) & ~newline] = 32
        starts, ends, space = _token_bounds(buf)
    values = np.fromstring(buf.tobytes().decode("ascii"), dtype=np.int64, sep=" ")
    if len(values) != len(starts):  # cannot happen once every byte is a digit or a space
        raise DataError("could not parse the file as integer ids", str(path))
    tok_line = line_of[starts]
    first_tok = np.ones(len(starts), dtype=bool)
    first_tok[1:] = tok_line[1:] != tok_line[:-1]
    user_of_tok = values[first_tok][np.cumsum(first_tok) - 1]
    rest = ~first_tok
    return user_of_tok[rest], values[rest], tok_line[rest] + 1, values[first_tok]


def _token_bounds(buf: np.ndarray):
    """Start and end (exclusive) byte offsets of whitespace-separated tokens."""
    space = (buf == 32) | (buf == 9) | (buf == 10) | (buf == 13)
    word = (~space).astype(np.int8)
    edges = np.diff(np.concatenate(([0], word, [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), space


def _bad_token(buf: np.ndarray, line_of: np.ndarray, line: int) -> str:
    text = buf[line_of == line].tobytes().decode("utf-8", errors="replace").split()
    for tok in text:
        if not tok.isdigit() or len(tok) > _MAX_DIGITS or not tok.isascii():
            return tok
    return " ".join(text)[:40]


def load_lightgcn(folder: Path, options: LoadOptions, name: str) -> Interactions:
    """Load ``train.txt`` + ``test.txt`` from ``folder``; see the module docstring."""
    parts = []
    for fold, fname in enumerate(("train.txt", "test.txt")):
        path = require_file(folder, fname)
        parts.append((str(path), *parse_user_item_lines(path, options.on_bad_rows)))
    n_train = len(parts[0][1])
    users = np.concatenate([p[1] for p in parts])
    items = np.concatenate([p[2] for p in parts])
    lines = np.concatenate([p[3] for p in parts])
    fold = np.concatenate([np.zeros(n_train, np.int8), np.ones(len(parts[1][1]), np.int8)])

    def locate(row: int) -> tuple[str, int]:
        return parts[0 if row < n_train else 1][0], int(lines[row])

    data = build_interactions(
        users, items, name=name, options=options,
        known_users=np.concatenate([p[4] for p in parts]),
        row_meta={"fold": fold}, locate=locate, consume=True,
    )
    log.info("%s: %d users, %d items, %d train + %d test interactions", name, data.n_users,
             data.n_items, int((data.meta["fold"] == 0).sum()),
             int((data.meta["fold"] == 1).sum()))
    return data
