"""Errors raised on bad input. Each names what is wrong and where (file, line or id)."""

from __future__ import annotations


class DataError(ValueError):
    """Malformed or inconsistent input data.

    Args:
        message: what is wrong and what the user can do about it.
        path: the file the problem was found in, if any.
        line: 1-based line number in ``path``, if known.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)


class UnknownIdError(KeyError):
    """An external user or item id that the vocabulary does not know."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "unknown id"
