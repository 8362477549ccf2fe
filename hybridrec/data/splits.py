"""Train / validation / test splits of an :class:`Interactions`, by name.

Kinds (:data:`SPLIT_KINDS`):

* ``temporal``: one global cut in time. The latest ``test_fraction`` of interactions are
  test, the ``valid_fraction`` before them validation. Interactions that share the cut's
  timestamp all go to the later part, so the training data ends strictly before the test
  period (the parts can be slightly larger than asked).
* ``leave_last_out``: per user, the last ``n_test`` interactions by time are test and the
  ``n_valid`` before them validation (ties in time: later file row counts as later). Users
  with ``n_test + n_valid`` interactions or fewer keep them all in training.
* ``given``: the split stored by the loader in ``data.meta["fold"]`` (0 train, 1 test,
  2 validation), e.g. the LightGCN paper's split of Gowalla. With ``valid_fraction > 0``
  and no validation rows given, a seeded random share of training rows is validation.
* ``random``: a seeded random share of interactions; warns, since it leaks the future.
* ``cold_item``: ``cold_fraction`` of the items that have interactions are held out with
  all their interactions (``Split.cold_items``); they join the test set. The remaining
  interactions are split by ``base`` (default ``given`` if the loader stored a fold, else
  ``temporal`` if there are timestamps, else ``random``) for the warm test set. With
  ``valid_cold_fraction > 0``, a further share of the items is held out the same way into
  validation, so that validation has cold items as the test set does (what a model that
  calibrates cold against warm items chooses on).

Everywhere, test and validation rows of users with no training rows are dropped (with
``drop_cold_users``), and test items unseen in training are kept (cold items).
"""

from __future__ import annotations

import inspect
import logging
import warnings

import numpy as np

from .errors import DataError
from .interactions import Interactions, Split

log = logging.getLogger("hybridrec.data")

SPLIT_KINDS = ("temporal", "leave_last_out", "given", "random", "cold_item")
#: Kinds that need timestamps (``cold_item`` needs them when its base does).
TIMED_KINDS = ("temporal", "leave_last_out")

_TRAIN, _VALID, _TEST, _DROP = 0, 1, 2, -1


def make_split(
    data: Interactions,
    kind: str,
    *,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.0,
    n_test: int = 1,
    n_valid: int = 0,
    seed: int = 0,
    drop_cold_users: bool = True,
    cold_fraction: float | None = None,
    base: str | None = None,
    valid_cold_fraction: float = 0.0,
) -> Split:
    """Split ``data`` into train, test and (optionally) validation parts.

    Args:
        data: the interactions to split.
        kind: one of :data:`SPLIT_KINDS` (see the module docstring).
        test_fraction: share of interactions in test (``temporal``, ``random``, and the
            warm part of ``cold_item``).
        valid_fraction: share in validation (same kinds, and ``given``); 0 = none.
        n_test: test interactions per user (``leave_last_out``).
        n_valid: validation interactions per user (``leave_last_out``); 0 = none.
        seed: random seed (``random``, ``cold_item``, validation rows of ``given``).
        drop_cold_users: drop test/validation rows of users with no training rows.
        cold_fraction: share of items held out (``cold_item``; default 0.2).
        base: how ``cold_item`` splits the warm interactions (any kind but ``cold_item``).
        valid_cold_fraction: share of items held out into validation (``cold_item``).

    Raises:
        ValueError: unknown kind, or an option that the kind does not use.
        DataError: the kind needs timestamps (or a stored fold) that ``data`` lacks.
    """
    cold_fraction = _validate(kind, test_fraction, valid_fraction, n_test, n_valid, cold_fraction, base,
                              valid_cold_fraction)
    info: dict = {"seed": seed} if kind in ("random", "cold_item", "given") else {}
    cold_items = None
    if kind == "cold_item":
        codes, cold_items, base = _cold_item(data, cold_fraction, valid_cold_fraction, base, seed, info,
                                             test_fraction=test_fraction,
                                             valid_fraction=valid_fraction, n_test=n_test,
                                             n_valid=n_valid)
    else:
        codes = _codes(data, kind, test_fraction, valid_fraction, n_test, n_valid, seed, info)
    want_valid = valid_fraction > 0 or n_valid > 0 or bool((codes == _VALID).any())
    return _finish(data, codes, kind, info, drop_cold_users, want_valid, cold_items)


def check_split_options(kind: str, **options) -> None:
    """Raise ``ValueError`` for settings :func:`make_split` would reject, without any data:
    the command line checks them before it loads the data or makes a run folder."""
    params = inspect.signature(make_split).parameters
    unknown = sorted(set(options) - set(params) - {"seed"} | ({"data", "kind"} & set(options)))
    if unknown:
        valid = [p for p in params if p not in ("data", "kind", "seed")]
        raise ValueError(f"split option(s) {unknown} unknown; split options: {', '.join(valid)}")
    args = {p: v.default for p, v in params.items() if v.default is not inspect.Parameter.empty}
    args.update(options)
    _validate(kind, args["test_fraction"], args["valid_fraction"], args["n_test"], args["n_valid"],
              args["cold_fraction"], args["base"], args["valid_cold_fraction"])


def _validate(kind, test_fraction, valid_fraction, n_test, n_valid, cold_fraction, base, valid_cold_fraction):
    """Check the split settings; returns ``cold_fraction`` with its default filled in."""
    if kind not in SPLIT_KINDS:
        raise ValueError(f"unknown split kind {kind!r}; valid kinds: {', '.join(SPLIT_KINDS)}")
    if cold_fraction is not None and kind != "cold_item":
        raise ValueError(f"cold_fraction applies to cold_item splits only, not {kind!r}")
    cold_fraction = 0.2 if cold_fraction is None else cold_fraction
    _check_options(kind, test_fraction, valid_fraction, n_test, n_valid, cold_fraction, base)
    if not 0 <= valid_cold_fraction < 1 or cold_fraction + valid_cold_fraction >= 1:
        raise ValueError("need 0 <= valid_cold_fraction and cold_fraction + valid_cold_fraction < 1")
    if valid_cold_fraction and kind != "cold_item":
        raise ValueError(f"valid_cold_fraction applies to cold_item splits only, not {kind!r}")
    return cold_fraction


def _check_options(kind, test_fraction, valid_fraction, n_test, n_valid, cold_fraction, base):
    if not 0 < test_fraction < 1 or not 0 <= valid_fraction < 1:
        raise ValueError("need 0 < test_fraction < 1 and 0 <= valid_fraction < 1")
    if test_fraction + valid_fraction >= 1:
        raise ValueError("test_fraction + valid_fraction must be below 1")
    if n_test < 1 or n_valid < 0:
        raise ValueError("need n_test >= 1 and n_valid >= 0")
    per_user = kind == "leave_last_out" or (kind == "cold_item" and base == "leave_last_out")
    if not per_user and (n_valid or n_test != 1):
        raise ValueError(f"n_test/n_valid apply to leave_last_out splits, not {kind!r}; "
                         "use test_fraction/valid_fraction")
    if per_user and valid_fraction:
        raise ValueError("leave_last_out takes n_valid (validation rows per user), "
                         "not valid_fraction")
    if kind != "cold_item" and base is not None:
        raise ValueError("base applies to cold_item splits only")
    if not 0 < cold_fraction < 1:
        raise ValueError("need 0 < cold_fraction < 1")


def _require_time(data: Interactions, kind: str) -> np.ndarray:
    if data.timestamps is None:
        raise DataError(
            f"split kind {kind!r} needs timestamps, and data set {data.name!r} has none; "
            "without time use 'given' (if the loader stored a fold), 'random', or "
            "'cold_item' with base='given' or 'random'"
        )
    return data.timestamps


def _codes(data, kind, test_fraction, valid_fraction, n_test, n_valid, seed, info):
    """Part of each row: _TRAIN, _VALID or _TEST."""
    if kind == "temporal":
        return _temporal(_require_time(data, kind), test_fraction, valid_fraction, info)
    if kind == "leave_last_out":
        return _leave_last_out(data.users, _require_time(data, kind), n_test, n_valid, info)
    if kind == "given":
        return _given(data, valid_fraction, seed, info)
    warnings.warn(
        "random splits leak the future: training may contain interactions made after test "
        "ones; prefer 'temporal' or 'leave_last_out' when the data has timestamps",
        UserWarning, stacklevel=3,
    )
    log.warning("%s: random split (it leaks the future)", data.name)
    codes = np.full(len(data), _TRAIN, dtype=np.int8)
    perm = np.random.default_rng(seed).permutation(len(data))
    n_te, n_va = round(len(data) * test_fraction), round(len(data) * valid_fraction)
    codes[perm[:n_te]] = _TEST
    codes[perm[n_te:n_te + n_va]] = _VALID
    return codes


def _temporal(ts, test_fraction, valid_fraction, info):
    n = len(ts)
    codes = np.full(n, _TRAIN, dtype=np.int8)
    if n == 0:
        return codes
    s = np.sort(ts)
    n_te = max(1, round(n * test_fraction))
    t_test = s[n - n_te]
    codes[ts >= t_test] = _TEST
    info["test_start"] = int(t_test)
    n_va = round(n * valid_fraction)
    if n_va:
        t_valid = s[max(0, n - n_te - n_va)]
        codes[(ts >= t_valid) & (ts < t_test)] = _VALID
        info["valid_start"] = int(t_valid)
    return codes


def _leave_last_out(users, ts, n_test, n_valid, info):
    n = len(users)
    order = np.lexsort((np.arange(n), ts, users))
    counts = np.bincount(users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(n) - starts[users[order]]
    from_end = counts[users[order]] - 1 - rank  # 0 = the user's last interaction
    enough = counts[users[order]] > n_test + n_valid
    codes = np.full(n, _TRAIN, dtype=np.int8)
    codes[order[enough & (from_end < n_test)]] = _TEST
    codes[order[enough & (from_end >= n_test) & (from_end < n_test + n_valid)]] = _VALID
    too_few = int(((counts > 0) & (counts <= n_test + n_valid)).sum())
    info["users_all_train"] = too_few
    if too_few:
        log.info("leave_last_out: %d users with <= %d interactions keep all in training",
                 too_few, n_test + n_valid)
    return codes


def _given(data, valid_fraction, seed, info):
    fold = data.meta.get("fold")
    if fold is None:
        raise DataError(
            f"split kind 'given' needs data.meta['fold'] (stored by loaders whose files come "
            f"split, such as gowalla); data set {data.name!r} has none: use one of "
            f"{', '.join(k for k in SPLIT_KINDS if k != 'given')}"
        )
    fold = np.asarray(fold)
    if len(fold) != len(data) or not np.isin(fold, (0, 1, 2)).all():
        raise DataError("data.meta['fold'] must hold 0 (train), 1 (test) or 2 (valid) per row")
    codes = np.select([fold == 1, fold == 2], [_TEST, _VALID], _TRAIN).astype(np.int8)
    if valid_fraction > 0 and not (fold == 2).any():
        train_rows = np.flatnonzero(codes == _TRAIN)
        n_va = round(len(data) * valid_fraction)
        pick = np.random.default_rng(seed).choice(train_rows, size=min(n_va, len(train_rows)),
                                                  replace=False)
        codes[pick] = _VALID
        log.info("given split: %d random training rows held out for validation", len(pick))
    return codes


def _cold_item(data, cold_fraction, valid_cold_fraction, base, seed, info, **base_options):
    if base is None:
        base = ("given" if "fold" in data.meta else
                "temporal" if data.timestamps is not None else "random")
    if base not in SPLIT_KINDS or base == "cold_item":
        raise ValueError(f"base must be one of {[k for k in SPLIT_KINDS if k != 'cold_item']}")
    if base in TIMED_KINDS:
        _require_time(data, f"cold_item with base={base!r}")
    counts = data.item_counts()
    candidates = np.flatnonzero(counts > 0)
    n_cold = max(1, round(len(candidates) * cold_fraction))
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(candidates, size=n_cold, replace=False))
    is_cold = np.zeros(data.n_items, dtype=bool)
    is_cold[cold] = True
    is_valid_cold = np.zeros(data.n_items, dtype=bool)
    if valid_cold_fraction > 0:  # drawn after the test items, which stay those of the same seed without it
        rest = candidates[~is_cold[candidates]]
        n_vc = min(len(rest), max(1, round(len(candidates) * valid_cold_fraction)))
        is_valid_cold[rng.choice(rest, size=n_vc, replace=False)] = True
    cold_rows, valid_rows = is_cold[data.items], is_valid_cold[data.items]
    warm_rows = ~cold_rows & ~valid_rows
    warm = data.subset(warm_rows)
    codes = np.full(len(data), _TEST, dtype=np.int8)
    codes[valid_rows] = _VALID
    codes[warm_rows] = _codes(warm, base, seed=seed, info=info, **base_options)
    info.update(base=base, cold_fraction=cold_fraction, cold_item_rows=int(cold_rows.sum()))
    if valid_cold_fraction > 0:
        info.update(valid_cold_fraction=valid_cold_fraction, valid_cold_items=int(is_valid_cold.sum()),
                    valid_cold_item_rows=int(valid_rows.sum()))
    log.info("cold_item split: %d items (%d interactions) held out for test, %d (%d) for validation",
             n_cold, cold_rows.sum(), int(is_valid_cold.sum()), int(valid_rows.sum()))
    return codes, cold, base


def _check_sizes(data, codes, kind, info) -> None:
    """A split with nothing to learn from or nothing to test on is an error, never NaN metrics."""
    n_train, n_test = int((codes == _TRAIN).sum()), int((codes == _TEST).sum())
    if n_train and n_test:
        return
    counts = (f"{len(data)} interactions of {data.n_users} users and {data.n_items} items -> {n_train} train, "
              f"{int((codes == _VALID).sum())} validation, {n_test} test")
    if not len(data):
        hint = "the data set has no interactions: check the file and the loader options (e.g. rating_threshold)"
    elif not n_train:
        hint = ("every interaction went to test or validation" + (
            ": all timestamps are equal, so the time cut-off leaves no earlier rows; use split 'random' or "
            "'leave_last_out'" if data.timestamps is not None and kind in ("temporal", "cold_item")
            and np.ptp(data.timestamps) == 0 else ""))
    else:
        dropped = info.get("dropped_cold_user_rows", 0)
        hint = (f"no test rows are left ({dropped} dropped because their users have no training rows; users "
                "need more interactions than the split holds out, e.g. 2 or more for leave_last_out)")
    raise DataError(f"the {kind!r} split of {data.name!r} is degenerate: {counts}; {hint}")


def _finish(data, codes, kind, info, drop_cold_users, want_valid, cold_items) -> Split:
    if drop_cold_users:
        has_train = np.zeros(data.n_users, dtype=bool)
        has_train[data.users[codes == _TRAIN]] = True
        drop = (codes != _TRAIN) & ~has_train[data.users]
        info["dropped_cold_user_rows"] = int(drop.sum())
        if drop.any():
            log.info("%s split: dropped %d test/valid rows of %d users with no training rows",
                     kind, drop.sum(), len(np.unique(data.users[drop])))
        codes = np.where(drop, _DROP, codes)
    _check_sizes(data, codes, kind, info)
    train = data.subset(codes == _TRAIN)
    test = data.subset(codes == _TEST)
    valid = data.subset(codes == _VALID) if want_valid else None
    seen = np.zeros(data.n_items, dtype=bool)
    seen[train.items] = True
    info["test_users"] = int(len(np.unique(test.users)))
    info["test_rows_cold_item"] = int((~seen[test.items]).sum())
    split = Split(train=train, test=test, valid=valid, kind=kind, cold_items=cold_items,
                  info=info)
    log.info("%s split of %s: %d train, %d valid, %d test", kind, data.name, len(train),
             0 if valid is None else len(valid), len(test))
    return split
