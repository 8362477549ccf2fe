"""Property-based tests (hypothesis) of the ``csv`` loader on malformed files.

Each example writes one interactions file (CSV, TSV or parquet) built from random pieces:
bytes and text in fields, missing and extra columns, empty ids, NaN / inf / huge numbers in
the rating and time columns, quotes, byte-order marks, blank lines, CR and CRLF line ends,
duplicate rows, header-only and empty files, non-UTF-8 bytes, very long fields; parquet
files with wrong column types, nulls, list cells and repeated column names. It loads the
file with and without time and rating columns, under ``on_bad_rows="error"`` and
``"skip"``. The property: the load either gives a valid :class:`Interactions` (indices in
range, arrays aligned, ``int64`` timestamps below ``2**53``, finite ``float32`` ratings)
or raises :class:`DataError` naming the file and, for CSV/TSV, a line. Nothing else may
escape. For CSV/TSV files the columnar fast path must also give exactly what the exact
line-tracking reader gives (the same Interactions, or the same error message).

Runs are reproducible (``derandomize=True``) and counted; the counts are printed at the
end of the module (``-s`` or the terminal summary) and quoted in the README.
"""

from __future__ import annotations

import os
import re
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridrec.data import DataError, Interactions, load_dataset
from hybridrec.data import movielens, tabular

pytestmark = pytest.mark.slow

# 300 reproducible examples per file kind in CI; HYBRIDREC_FUZZ_EXAMPLES=5000
# HYBRIDREC_FUZZ_RANDOM=1 for a longer, random hunt.
EXAMPLES = int(os.environ.get("HYBRIDREC_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("HYBRIDREC_FUZZ_RANDOM", "") != "1",
                suppress_health_check=list(HealthCheck))
COUNTS: Counter = Counter()
ERRORS: Counter = Counter()  # kinds of DataError seen, for a look with -s
COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    files = {k.split()[0]: v for k, v in COUNTS.items() if k.endswith(" files")}
    loads = sum(v for k, v in COUNTS.items() if k.startswith("load "))
    line = (f"hypothesis cases tried: {sum(files.values())} files ("
            + ", ".join(f"{v} {k}" for k, v in sorted(files.items()))
            + f"), {loads} loads (CSV/TSV by both readers); "
            + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())
                        if not k.endswith(" files") and not k.startswith("load ")))
    kinds = "\n".join(f"  {n:5d}  {m!r}" for m, n in ERRORS.most_common(25))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("\n" + line)
    print(line + "\nmost frequent DataError messages:\n" + kinds)


# -- field values ----------------------------------------------------------------------
ODD_IDS = ["007", "+5", "-0", " 5", "5 ", "0x1f", "1.0", "1e3", "", " ", "NaN", "abc", "ü",
           "9" * 25, "-9223372036854775809", "9223372036854775807", "5\x00", "a,b", 'q"q',
           "\t", "\ufeff1", "٣", "\x1c7"]
ODD_NUMBERS = ["", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e39",
               "3.4e38", "0x10", "1_0", "+4.5", ".5", "5.", "1e", "e5", " 4 ", "١", "1" * 40,
               "2021-01-01", "2021-01-01T00:00:00Z", "2021-13-45", "9007199254740993",
               "-9007199254740993", "9007199254740991", "0001-01-01", "9999-12-31T23:59:59",
               "1.5e9", "-0", "1e-400", "٣.٥"]
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
ids = st.one_of(st.integers(-3, 40).map(str), st.sampled_from(ODD_IDS), text)
numbers = st.one_of(st.integers(-5, 2 * 10**9).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(ODD_NUMBERS), text)
plain_row = st.tuples(st.integers(0, 30).map(str), st.integers(0, 30).map(str),
                      st.sampled_from(["1", "2.5", "4", "5.0", "0.5"]),
                      st.one_of(st.integers(0, 2 * 10**9).map(str),
                                st.sampled_from(["1600000000.5", "-5", "1.5e9"]))).map(list)
odd_row = st.tuples(ids, ids, numbers, numbers).map(list)


def chance(draw, one_in: int) -> bool:
    """True about once in ``one_in`` draws. (Hypothesis favours small integers, so
    ``integers(0, n) == 0`` would come up far more often than 1 / (n + 1).)"""
    return draw(st.sampled_from([False] * (one_in - 1) + [True]))


PERTURBATIONS = ["odd value", "blank line", "quoted field", "lone CR", "bad byte",
                 "extra field", "missing field", "header change", "long field",
                 "leading zeros", "no header", "duplicates", "huge rating"]


@st.composite
def header(draw):
    names = list(COLUMNS)
    change = draw(st.integers(0, 4))
    if change == 0:
        names.pop(draw(st.integers(0, 3)))  # a missing column
    elif change == 1:
        names.append(draw(st.sampled_from(["extra", "user_id", " rating", "", '"q"'])))
    elif change == 2:
        names[draw(st.integers(0, 3))] = draw(text)
    elif change == 3:
        names = [f" {n} " for n in names]  # padded names are stripped
    return names


def quote(field: str, sep: str, how: int) -> str:
    if how == 1 or (how == 2 and any(c in field for c in (sep, '"', "\n", "\r"))):
        return '"' + field.replace('"', '""') + '"'
    if how == 3 and field:  # a broken quote
        return '"' + field
    return field


@st.composite
def delimited(draw, sep: str) -> bytes:
    """The bytes of one CSV or TSV file: plain (the fast path's case), plain but for one
    perturbation, or wild (every piece random)."""
    mode = draw(st.sampled_from(["plain", "one perturbation", "wild"]))
    change = draw(st.sampled_from(PERTURBATIONS)) if mode == "one perturbation" else None
    wild = mode == "wild"
    changed = change == "header change" or (wild and chance(draw, 3))
    head = draw(header()) if changed else list(COLUMNS)
    row = st.one_of(plain_row, plain_row, odd_row) if wild else plain_row
    body = draw(st.lists(row, max_size=25))
    if body and (change == "duplicates" or (wild and chance(draw, 3))):
        body += draw(st.lists(st.sampled_from(body), max_size=5))
    if body and change in ("odd value", "leading zeros"):
        cell, r = draw(st.integers(0, 3)), draw(st.integers(0, len(body) - 1))
        body[r][cell] = ("0" + body[r][cell] if change == "leading zeros"
                         else draw(ids if cell < 2 else numbers))
    if body and change == "huge rating":
        body[draw(st.integers(0, len(body) - 1))][2] = draw(st.sampled_from(["1e39", "-4e38"]))
    if body and change == "long field":
        body[0][draw(st.integers(0, 1))] = "7" * draw(st.sampled_from([5000, 200_000]))
    for fields in body:  # a field too many or too few
        if change == "extra field" or (wild and chance(draw, 20)):
            fields.append(draw(numbers))
            change = None
        elif change == "missing field" or (wild and chance(draw, 20)):
            fields.pop()
            change = None
    lines = body if change == "no header" or (wild and chance(draw, 15)) else [head] + body
    how = draw(st.sampled_from([0, 2, 1, 3])) if wild else 1 if change == "quoted field" else 0
    out = []
    for fields in lines:
        broken = how == 3 and chance(draw, 8)
        out.append(sep.join(quote(f, sep, 3 if broken else 2 if how == 3 else how)
                            for f in fields))
        if change == "blank line" or (wild and chance(draw, 10)):
            out.append(draw(st.sampled_from(["", " ", "\t", sep])))
            change = None
    ends = draw(st.sampled_from(["\n", "\r\n"] + (["mixed"] if wild else [])))
    data = ""
    for line in out:
        end = draw(st.sampled_from(["\n", "\r\n", "\r"])) if ends == "mixed" else ends
        data += line + end
    if change == "lone CR" and "\n" in data:
        at = data.index("\n")
        data = data[:at] + "\r" + data[at + 1:]
    if draw(st.booleans()):
        data = data[:-1] if data.endswith("\n") else data  # no newline at the end
    raw = data.encode("utf-8")
    if chance(draw, 6):
        raw = b"\xef\xbb\xbf" + raw
    if raw and (change == "bad byte" or (wild and chance(draw, 6))):  # not UTF-8, anywhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at:]
    return raw


# -- parquet ---------------------------------------------------------------------------
PARQUET_COLUMN = st.sampled_from([
    "int", "int_null", "float", "float_odd", "str", "str_null", "bool", "datetime",
    "datetime_tz", "datetime_nat", "list", "bytes", "mixed", "big_uint", "category",
    "empty_str", "decimal",
])


def parquet_values(kind: str, n: int, draw) -> pa.Array:
    ints = draw(st.lists(st.integers(-3, 30), min_size=n, max_size=n))
    if kind == "int":
        return pa.array(ints, pa.int64())
    if kind == "int_null":
        return pa.array([None if i % 4 == 0 else i for i in ints], pa.int64())
    if kind == "float":
        return pa.array([i / 2 for i in ints], pa.float64())
    if kind == "float_odd":
        odd = [float("nan"), float("inf"), -float("inf"), 1e39, 2.0**60, None, 1.5]
        return pa.array([odd[i % len(odd)] for i in ints], pa.float64())
    if kind == "str":
        return pa.array(draw(st.lists(st.one_of(ids, numbers), min_size=n, max_size=n)))
    if kind == "str_null":
        return pa.array([None if i % 3 == 0 else str(i) for i in ints])
    if kind == "bool":
        return pa.array([i % 2 == 0 for i in ints])
    if kind == "datetime":
        return pa.array([1_600_000_000_000 + i for i in ints], pa.timestamp("ms"))
    if kind == "datetime_tz":
        return pa.array([1_600_000_000_000 + i for i in ints], pa.timestamp("ms", tz="Asia/Tokyo"))
    if kind == "datetime_nat":
        return pa.array([None if i % 2 else 10**9 + i for i in ints], pa.timestamp("s"))
    if kind == "list":
        return pa.array([[i, i + 1] if i % 2 else None for i in ints], pa.list_(pa.int64()))
    if kind == "bytes":
        return pa.array([bytes([i % 256]) * 2 for i in ints], pa.binary())
    if kind == "mixed":
        return pa.array([str(i) if i % 2 else "x" for i in ints])
    if kind == "big_uint":
        return pa.array([2**64 - 1 - abs(i) for i in ints], pa.uint64())
    if kind == "category":
        return pa.array([str(i % 3) for i in ints]).dictionary_encode()
    if kind == "empty_str":
        return pa.array(["" for _ in ints])
    if kind == "decimal":
        from decimal import Decimal

        return pa.array([Decimal(i) / 4 for i in ints], pa.decimal128(10, 2))
    raise AssertionError(kind)


@st.composite
def parquet_table(draw) -> pa.Table | bytes:
    if chance(draw, 25):
        return draw(st.binary(max_size=64))  # not a parquet file at all
    n = draw(st.integers(0, 12))
    names = draw(header()) if chance(draw, 3) else list(COLUMNS)
    cols = [parquet_values(draw(PARQUET_COLUMN), n, draw) for _ in names]
    return pa.Table.from_arrays(cols, names=names)


# -- the property ----------------------------------------------------------------------
def load_options(draw) -> dict:
    return {
        "time_col": draw(st.sampled_from([None, "timestamp"])),
        "rating_col": draw(st.sampled_from([None, "rating"])),
        "on_bad_rows": draw(st.sampled_from(["error", "skip"])),
        "duplicates": draw(st.sampled_from(["keep_first", "keep_last", "error"])),
        "min_user_interactions": draw(st.sampled_from([1, 1, 2])),
    }


def load(path, kind: str, options: dict) -> Interactions | DataError:
    """Load and check the property; returns the Interactions or the DataError."""
    COUNTS[f"load {kind}"] += 1
    try:
        data = load_dataset("csv", str(path), **options)
    except DataError as err:  # anything else escapes and fails the test
        message = str(err)
        assert str(path) in message, message
        if kind != "parquet":
            assert re.search(r"line \d+", message) or "file is empty" in message, message
        COUNTS[f"{kind}: DataError"] += 1
        ERRORS[kind + re.sub(r"^, line \d+", "", message.replace(str(path), ""))[:60]] += 1
        return err
    check_valid(data, options)
    COUNTS[f"{kind}: loaded"] += 1
    return data


def check_valid(data: Interactions, options: dict) -> None:
    n = len(data)
    assert data.users.dtype == np.int64 and data.items.dtype == np.int64
    assert len(data.items) == n
    if n:
        assert 0 <= data.users.min() and data.users.max() < data.n_users
        assert 0 <= data.items.min() and data.items.max() < data.n_items
    assert data.n_users == len(set(data.user_vocab.to_list()))
    if options.get("time_col"):
        assert data.timestamps is not None and data.timestamps.dtype == np.int64
        assert len(data.timestamps) == n and (np.abs(data.timestamps) < 2**53).all()
    else:
        assert data.timestamps is None
    if options.get("rating_col"):
        assert data.ratings is not None and data.ratings.dtype == np.float32
        assert len(data.ratings) == n and np.isfinite(data.ratings).all()
    else:
        assert data.ratings is None


def same_outcome(a, b) -> None:
    if isinstance(a, DataError) or isinstance(b, DataError):
        assert str(a) == str(b)
        return
    assert a.user_vocab == b.user_vocab and a.item_vocab == b.item_vocab
    for name in ("users", "items", "timestamps", "ratings"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.meta["load_info"] == b.meta["load_info"]


def fuzz_delimited(tmp_path, data, kind: str, sep: str, monkeypatch) -> None:
    path = tmp_path / f"interactions.{kind}"
    path.write_bytes(data.draw(delimited(sep)))
    options = load_options(data.draw)
    got = load(path, kind, options)
    if tabular.read_columns(path, sep, {"user_id": "id"}) is not None:
        COUNTS[f"{kind}: fast path"] += 1
    with monkeypatch.context() as m:  # the exact reader must agree with the fast path
        m.setattr(tabular, "read_columns", lambda *a, **k: None)
        same_outcome(got, load(path, kind, options))
    COUNTS[f"{kind} files"] += 1


@FUZZ
@given(data=st.data())
def test_csv_files_load_or_raise_data_error(tmp_path, data, monkeypatch):
    fuzz_delimited(tmp_path, data, "csv", ",", monkeypatch)


@FUZZ
@given(data=st.data())
def test_tsv_files_load_or_raise_data_error(tmp_path, data, monkeypatch):
    fuzz_delimited(tmp_path, data, "tsv", "\t", monkeypatch)


@FUZZ
@given(table=parquet_table(), data=st.data())
def test_parquet_files_load_or_raise_data_error(tmp_path, table, data):
    path = tmp_path / "interactions.parquet"
    if isinstance(table, bytes):
        path.write_bytes(table)
    else:
        pq.write_table(table, path)
    load(path, "parquet", load_options(data.draw))
    COUNTS["parquet files"] += 1


def test_movielens_ratings_fast_path_is_used_on_real_files(dataset_dir, monkeypatch):
    """Not random, but the same agreement on the real ml-100k file (tab-separated, no
    header), through the MovieLens loader."""
    folder = dataset_dir("ml-100k")
    got = load_dataset("ml-100k", str(folder))
    monkeypatch.setattr(movielens, "read_columns", lambda *a, **k: None)
    same_outcome(got, load_dataset("ml-100k", str(folder)))
    assert pd.Series(got.users).between(0, got.n_users - 1).all()
