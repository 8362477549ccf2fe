"""Map external ids (strings or ints from the source files) to contiguous indices."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .errors import UnknownIdError


class Vocabulary:
    """A fixed, ordered set of external ids; index ``i`` holds ``ids[i]``.

    External ids are stored as strings so that ``"42"`` and ``42`` name the same entity
    whatever file they came from. Lookups of unknown ids raise :class:`UnknownIdError`
    (or return ``-1`` with ``missing="neg"``); they never fall back to index 0.

    Args:
        ids: the external ids, unique, in index order.
        kind: ``"user"`` or ``"item"``, used in error messages.
    """

    def __init__(self, ids: Iterable, kind: str = "item"):
        self.kind = kind
        self._ids = np.asarray([str(x) for x in ids], dtype=object)
        self._index = {x: i for i, x in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            seen: set[str] = set()
            dup = next(x for x in self._ids if x in seen or seen.add(x))
            raise ValueError(f"duplicate {kind} id {dup!r} in vocabulary")

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, ext_id) -> bool:
        return str(ext_id) in self._index

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self._ids, other._ids)

    @property
    def ids(self) -> np.ndarray:
        """External ids (strings) in index order."""
        return self._ids

    def index(self, ext_ids: Sequence | str | int, missing: str = "raise") -> np.ndarray | int:
        """Indices of external ids.

        Args:
            ext_ids: one id or a sequence of ids.
            missing: ``"raise"`` (default) raises :class:`UnknownIdError` naming the first
                unknown id; ``"neg"`` returns ``-1`` for unknown ids.
        """
        scalar = isinstance(ext_ids, (str, int, np.integer))
        keys = [str(ext_ids)] if scalar else [str(x) for x in ext_ids]
        out = np.fromiter((self._index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        if missing == "raise" and (out < 0).any():
            bad = keys[int(np.flatnonzero(out < 0)[0])]
            raise UnknownIdError(
                f"unknown {self.kind} id {bad!r}: it is not in the training data "
                f"({len(self)} {self.kind}s known)"
            )
        return int(out[0]) if scalar else out

    def lookup(self, indices) -> np.ndarray:
        """External ids of contiguous indices."""
        return self._ids[np.asarray(indices, dtype=np.int64)]

    def to_list(self) -> list[str]:
        return self._ids.tolist()
