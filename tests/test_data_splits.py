"""Known-answer tests of :func:`hybridrec.data.make_split`."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec.data import DataError, Interactions, Vocabulary, make_split


def toy(timestamps=True, fold=None) -> Interactions:
    """Three users; user c has a single interaction, the latest of all."""
    users = [0, 0, 0, 0, 1, 1, 1, 2, 0, 1]
    items = [0, 1, 2, 3, 0, 2, 4, 1, 4, 1]
    ts = [10, 20, 30, 40, 15, 25, 35, 100, 5, 35]
    return Interactions(
        users=users, items=items,
        user_vocab=Vocabulary(["a", "b", "c"], kind="user"),
        item_vocab=Vocabulary([f"i{k}" for k in range(6)]),
        timestamps=ts if timestamps else None,
        name="toy",
        meta={} if fold is None else {"fold": np.asarray(fold, dtype=np.int8)},
    )


def rows(part: Interactions) -> set[tuple[str, str]]:
    return set(map(tuple, part.to_frame()[["user_id", "item_id"]].values.tolist()))


def test_temporal_cut_puts_ties_after_the_cut():
    split = make_split(toy(), "temporal", test_fraction=0.2)
    # The 2 latest rows are ts 100 (user c) and ts 40; ts 35 is not after the cut.
    assert split.info["test_start"] == 40
    assert rows(split.test) == {("a", "i3")}  # c has no training rows: dropped
    assert split.info["dropped_cold_user_rows"] == 1
    assert len(split.train) == 8 and split.valid is None
    tied = make_split(toy(), "temporal", test_fraction=0.3)  # cut at ts 35: both 35s go to test
    assert rows(tied.test) == {("a", "i3"), ("b", "i4"), ("b", "i1")}


def test_temporal_validation_before_test():
    split = make_split(toy(), "temporal", test_fraction=0.2, valid_fraction=0.2)
    assert split.info["valid_start"] == 35
    assert rows(split.valid) == {("b", "i4"), ("b", "i1")}
    assert split.train.timestamps.max() < 35 <= split.valid.timestamps.min()
    kept = make_split(toy(), "temporal", test_fraction=0.2, drop_cold_users=False)
    assert rows(kept.test) == {("a", "i3"), ("c", "i1")}


def test_leave_last_out_takes_each_users_last_items():
    split = make_split(toy(), "leave_last_out")
    # a's last is i3 (ts 40); b has two rows at ts 35: the later file row (i1) is last.
    assert rows(split.test) == {("a", "i3"), ("b", "i1")}
    assert split.info["users_all_train"] == 1  # c has a single interaction
    assert ("c", "i1") in rows(split.train)
    with_valid = make_split(toy(), "leave_last_out", n_valid=1)
    assert rows(with_valid.valid) == {("a", "i2"), ("b", "i4")}
    assert len(with_valid.train) + len(with_valid.valid) + len(with_valid.test) == 10


def test_random_warns_and_is_seeded():
    with pytest.warns(UserWarning, match="leak the future"):
        one = make_split(toy(), "random", test_fraction=0.3, seed=1)
    with pytest.warns(UserWarning):
        two = make_split(toy(), "random", test_fraction=0.3, seed=1)
    assert rows(one.test) == rows(two.test) and len(one.test) + len(one.train) <= 10
    with pytest.warns(UserWarning):
        assert make_split(toy(timestamps=False), "random", test_fraction=0.3).kind == "random"


def test_given_uses_the_stored_fold():
    fold = [0, 0, 0, 1, 0, 0, 1, 0, 0, 2]
    split = make_split(toy(fold=fold), "given")
    assert rows(split.test) == {("a", "i3"), ("b", "i4")}
    assert rows(split.valid) == {("b", "i1")}
    with pytest.raises(DataError, match="needs data.meta\\['fold'\\]"):
        make_split(toy(), "given")


def test_kinds_needing_time_say_which_work_without():
    for kind in ("temporal", "leave_last_out"):
        with pytest.raises(DataError, match="without time use 'given'.*'random'"):
            make_split(toy(timestamps=False), kind)


def test_cold_item_holds_out_items_with_all_their_rows():
    data = toy()
    split = make_split(data, "cold_item", cold_fraction=0.4, seed=3)
    cold = split.cold_items
    assert len(cold) == 2 and split.info["base"] == "temporal"
    assert not np.isin(split.train.items, cold).any()
    held = np.isin(data.items, cold) & (data.users != 2)  # user c has no training rows
    assert (np.isin(split.test.items, cold)).sum() == held.sum()
    assert split.summary()["cold_items"] == 2


def test_errors_for_unknown_kinds_and_misused_options():
    with pytest.raises(ValueError, match="valid kinds: temporal, leave_last_out, given"):
        make_split(toy(), "by_user")
    with pytest.raises(ValueError, match="use test_fraction"):
        make_split(toy(), "temporal", n_valid=1)
    with pytest.raises(ValueError, match="not valid_fraction"):
        make_split(toy(), "leave_last_out", valid_fraction=0.1)
    with pytest.raises(ValueError, match="test_fraction"):
        make_split(toy(), "temporal", test_fraction=1.5)
