"""Item groups for per-group evaluation: warm/cold items and popularity buckets.

A group is a boolean mask over the item catalogue. Evaluating a group ranks only its
items, so "cold" answers "how well are never-trained-on items ranked among themselves".
"""

from __future__ import annotations

import warnings

import numpy as np

from ..data import Split


def popularity_buckets(train_counts, edges=(0, 1, 10, 100, 1000)) -> dict[str, np.ndarray]:
    """Items bucketed by their number of training interactions.

    Bucket ``j`` holds items with ``edges[j] <= count < edges[j + 1]``; the last bucket is
    open-ended. Names read ``"0"`` (a bucket of one count), ``"1-9"``, ``"1000+"``. Empty
    buckets are left out; items below ``edges[0]`` fall in no bucket.

    Args:
        train_counts: ``[n_items]`` interaction count of each item in training
            (``split.train.item_counts()``).
        edges: strictly increasing integer lower bounds.

    Returns:
        ``{name: bool [n_items]}``, usable as ``evaluate(..., groups=...)``.
    """
    counts = np.asarray(train_counts)
    edges = [int(e) for e in edges]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be strictly increasing integers, got {edges}")
    out: dict[str, np.ndarray] = {}
    for lo, hi in zip(edges, edges[1:] + [None]):
        if hi is None:
            name, mask = f"{lo}+", counts >= lo
        else:
            name = str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}"
            mask = (counts >= lo) & (counts < hi)
        if mask.any():
            out[name] = mask
    return out


def cold_item_mask(split: Split) -> np.ndarray:
    """Items with no training interaction (and the split's declared cold items): ``bool``."""
    cold = split.train.item_counts() == 0
    if split.cold_items is not None:
        cold[np.asarray(split.cold_items, dtype=np.int64)] = True
    return cold


def default_groups(split: Split, target_items: np.ndarray, k_max: int) -> dict[str, np.ndarray]:
    """``all``, plus ``warm`` and ``cold`` when some target item is cold.

    A cold group with fewer than ``k_max`` items cannot fill a top-K list; it is left out
    with a warning rather than failing the whole evaluation.

    Args:
        split: the split evaluated.
        target_items: item index of every target interaction.
        k_max: the largest cut-off.
    """
    n = split.n_items
    groups = {"all": np.ones(n, dtype=bool)}
    cold = cold_item_mask(split)
    if cold[np.asarray(target_items, dtype=np.int64)].any():
        if cold.sum() < k_max:
            warnings.warn(
                f"cold group left out: it has {int(cold.sum())} items, fewer than k={k_max}; "
                "pass groups=... with a smaller k to evaluate it",
                stacklevel=3,
            )
        else:
            groups["warm"] = ~cold
            groups["cold"] = cold
    return groups


def check_groups(groups: dict, n_items: int, k_max: int) -> dict[str, np.ndarray]:
    """Validate user-supplied groups: bool masks of length ``n_items`` with ``>= k_max`` items."""
    if not isinstance(groups, dict) or not groups:
        raise ValueError("groups must be a non-empty dict {name: bool mask over items}")
    out = {}
    for name, mask in groups.items():
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (n_items,):
            raise ValueError(
                f"group {name!r} must be a bool mask of shape ({n_items},), "
                f"got dtype {mask.dtype} shape {mask.shape}"
            )
        size = int(mask.sum())
        if size < k_max:
            raise ValueError(
                f"k={k_max} is larger than group {name!r}, which ranks {size} of the "
                f"{n_items} catalogue items; use k <= {size} or a larger group"
            )
        out[str(name)] = mask
    return out
