"""The columnar fast path (columnar.read_columns): typed arrays for plain files, and the
exact reader, with its messages, for everything else."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec.data import DataError, load_dataset
from hybridrec.data import columnar, movielens, tabular
from hybridrec.data.build import LoadOptions, build_interactions

KINDS = {"user_id": "id", "item_id": "id", "rating": "number", "timestamp": "time"}
PLAIN = "user_id,item_id,rating,timestamp\n10,2,4.5,100\n2,2,3,200.7\n10,1,1e0,-3\n"


def fast(tmp_path, text, name="inter.csv", kinds=KINDS, **kw):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return columnar.read_columns(path, "\t" if name.endswith(".tsv") else ",", kinds, **kw)


def test_plain_file_reads_typed_columns_with_exact_lines(tmp_path):
    table = fast(tmp_path, PLAIN)
    assert table.data["user_id"].dtype == np.int64 and table.data["user_id"].tolist() == [10, 2, 10]
    assert table.data["rating"].tolist() == [4.5, 3.0, 1.0]
    assert table.data["timestamp"].tolist() == [100, 200, -3]  # floor, as the exact reader
    assert [table.lines[i] for i in range(3)] == [2, 3, 4]
    assert np.asarray(table.lines).tolist() == [2, 3, 4]
    assert table.columns == ["user_id", "item_id", "rating", "timestamp"]
    # CRLF line ends and a BOM are plain too; so is a last line without its newline.
    crlf = fast(tmp_path, ("\ufeff" + PLAIN).replace("\n", "\r\n").rstrip("\r\n"))
    assert crlf.columns[0] == "user_id" and crlf.data["item_id"].tolist() == [2, 2, 1]
    # Only the columns asked for are read; absent ones are left for require() to report.
    part = fast(tmp_path, PLAIN, kinds={"user_id": "id", "when": "time"})
    assert list(part.data) == ["user_id"]
    with pytest.raises(DataError, match="time_col 'when' is not a column.*'rating'"):
        part.require(["when"], "time_col")


@pytest.mark.parametrize("text", [
    PLAIN.replace("10,1", '"10",1'),                  # quotes (fields may hold newlines)
    PLAIN + "\n",                                     # a blank line shifts line numbers
    PLAIN.replace("\n2,2", "\r2,2"),                  # a lone carriage return
    PLAIN + "7,7,5,1,extra\n",                        # a short or long row
    PLAIN + "7,7,,5\n",                               # a missing number
    PLAIN + "7,7,nan,5\n",                            # not finite
    PLAIN + "7,7,1,9007199254740992\n",               # a time beyond 2**53
    PLAIN + "7,7,1,2021-01-01\n",                     # an ISO date: the exact reader's job
    PLAIN + "7,7,1,0x10\n",                           # hex: pyarrow would take it
    PLAIN.encode() + "7,caf\xe9,1,1\n".encode("latin-1"),  # not UTF-8
    "user_id,item_id,rating,timestamp\n",             # no rows
    "\nuser_id,item_id,rating,timestamp\n1,1,1,1\n",  # the header is not on line 1
    "user_id,user_id,rating,timestamp\n1,1,1,1\n",    # a repeated column name
])
def test_anything_unusual_goes_to_the_exact_reader(tmp_path, text):
    assert fast(tmp_path, text) is None


def test_ids_that_are_not_plain_integers_stay_strings(tmp_path):
    text = "user_id,item_id\n1,007\n2, 7\n3,-0\n4,+5\n5,x\n"
    table = fast(tmp_path, text, kinds={"user_id": "id", "item_id": "id"})
    assert table.data["user_id"].dtype == np.int64
    assert table.data["item_id"].tolist() == ["007", "7", "-0", "+5", "x"]  # stripped
    data = load_dataset("csv", str(tmp_path / "inter.csv"))
    assert data.item_vocab.to_list() == ["+5", "-0", "007", "7", "x"]
    # Ids turn into strings part-way through a large file: earlier blocks read back exactly.
    rows = "".join(f"{i},{i % 97}\n" for i in range(200_000)) + "7,abc\n"
    table = fast(tmp_path, "user_id,item_id\n" + rows, kinds={"user_id": "id", "item_id": "id"})
    assert table.data["item_id"][:3].tolist() == ["0", "1", "2"]
    assert table.data["item_id"][-1] == "abc" and table.data["user_id"].dtype == np.int64


def test_headerless_tab_file_as_movielens_reads_it(tmp_path):
    table = fast(tmp_path, "1\t2\t5\t881250949\n3\t4\t1\t1\n", name="u.tsv",
                 kinds={"user": "id", "item": "id", "rating": "number", "timestamp": "time"},
                 header=False, columns=["user", "item", "rating", "timestamp"])
    assert table.data["user"].tolist() == [1, 3] and [table.lines[i] for i in (0, 1)] == [1, 2]


def test_errors_after_the_fast_path_name_exact_lines(tmp_path):
    (tmp_path / "inter.csv").write_text("user_id,item_id\n1,5\n2,5\n1,5\n")
    with pytest.raises(DataError, match=r"occur at .*inter.csv, line 2 and again at .*line 4"):
        load_dataset("csv", str(tmp_path / "inter.csv"), duplicates="error")


def _exact(monkeypatch):
    monkeypatch.setattr(tabular, "read_columns", lambda *a, **k: None)
    monkeypatch.setattr(movielens, "read_columns", lambda *a, **k: None)


def _same(a, b):
    assert a.user_vocab == b.user_vocab and a.item_vocab == b.item_vocab
    for name in ("users", "items", "timestamps", "ratings"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None)
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.meta["load_info"] == b.meta["load_info"]


def test_fast_path_loads_what_the_exact_reader_loads(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n = 5000
    rows = zip(rng.integers(0, 300, n), rng.integers(0, 200, n), rng.integers(1, 11, n) / 2,
               rng.integers(0, 10**9, n))
    (tmp_path / "inter.csv").write_text("user_id,item_id,rating,timestamp\n"
                                        + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows))
    for options in ({}, {"duplicates": "keep_last", "min_user_interactions": 20},
                    {"rating_threshold": 4}):
        kw = dict(time_col="timestamp", rating_col="rating", **options)
        got = load_dataset("csv", str(tmp_path / "inter.csv"), **kw)
        with monkeypatch.context() as m:
            _exact(m)
            _same(got, load_dataset("csv", str(tmp_path / "inter.csv"), **kw))


@pytest.mark.parametrize("name", ["ml-100k", "ml-latest-small"])
def test_movielens_fast_path_matches_the_exact_reader(dataset_dir, monkeypatch, name):
    got = load_dataset(name, str(dataset_dir(name)))
    _exact(monkeypatch)
    _same(got, load_dataset(name, str(dataset_dir(name))))


def test_consume_reuses_the_arrays_handed_over():
    users = np.array([5, 3, 5, 9], dtype=np.int64)
    items = np.array([1, 1, 1, 2], dtype=np.int64)
    times = np.array([4, 3, 2, 1], dtype=np.int64)
    plain = build_interactions(users.copy(), items.copy(), name="x", options=LoadOptions(),
                               timestamps=times.copy())
    data = build_interactions(users, items, name="x", options=LoadOptions(), timestamps=times,
                              consume=True)
    assert np.shares_memory(data.users, users) and np.shares_memory(data.timestamps, times)
    assert data.users.tolist() == plain.users.tolist() == [0, 1, 2]  # (5, 1) at t=4 dropped
    assert data.timestamps.tolist() == plain.timestamps.tolist() == [3, 2, 1]
    # One array passed as both users and items is copied before either is overwritten.
    same = np.array([1, 2, 1], dtype=np.int64)
    both = build_interactions(same, same, name="x", options=LoadOptions(), consume=True)
    assert both.user_vocab.to_list() == both.item_vocab.to_list() == ["1", "2"]


# -- cases the property-based test (test_data_fuzz.py) found ----------------------------
def test_unicode_padding_is_stripped_by_every_reader(tmp_path, monkeypatch):
    # "\x1c" is whitespace to str.strip: the exact reader's regular-file path kept it.
    (tmp_path / "inter.tsv").write_text("user_id\titem_id\n0\t\x1c7\n")
    got = load_dataset("csv", str(tmp_path / "inter.tsv"))
    assert got.item_vocab.to_list() == ["7"]
    _exact(monkeypatch)
    _same(got, load_dataset("csv", str(tmp_path / "inter.tsv")))


def test_nul_in_an_id_is_a_bad_row_not_a_silent_merge(tmp_path):
    (tmp_path / "inter.csv").write_text("user_id,item_id\n1,5\x00\n2,5\n")
    with pytest.raises(DataError, match=r"line 2: NUL character in '5\\x00' in column 'item_id'"):
        load_dataset("csv", str(tmp_path / "inter.csv"))
    assert load_dataset("csv", str(tmp_path / "inter.csv"), on_bad_rows="skip").n_items == 1


def test_rating_beyond_float32_is_a_bad_row(tmp_path):
    (tmp_path / "inter.csv").write_text("user_id,item_id,rating\n1,1,4\n1,2,1e39\n")
    with pytest.raises(DataError,
                       match=r"line 3: rating 1e\+39 in column 'rating' is out of range"):
        load_dataset("csv", str(tmp_path / "inter.csv"), rating_col="rating")


def test_column_errors_name_the_header_line(tmp_path):
    (tmp_path / "inter.csv").write_text("\nuser_id,item\n1,1\n")
    with pytest.raises(DataError, match=r"inter.csv, line 2: item_col 'item_id' is not a column"):
        load_dataset("csv", str(tmp_path / "inter.csv"))
    (tmp_path / "inter.csv").write_text("user_id,user_id\n1,1\n")
    with pytest.raises(DataError, match=r"inter.csv, line 1: the header repeats a column name"):
        load_dataset("csv", str(tmp_path / "inter.csv"))


def test_parquet_list_cells_and_repeated_names(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"user_id": pa.array([[1, 2], None], pa.list_(pa.int64())),
                      "item_id": pa.array([1, 2])})
    pq.write_table(table, tmp_path / "inter.parquet")
    with pytest.raises(DataError, match=r"row 2: missing value in column 'user_id'"):
        load_dataset("csv", str(tmp_path / "inter.parquet"))
    data = load_dataset("csv", str(tmp_path / "inter.parquet"), on_bad_rows="skip")
    assert data.user_vocab.to_list() == ["[1 2]"]  # a list cell reads as its text
    assert data.items.dtype == np.int64 and data.item_vocab.to_list() == ["1"]
    pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]),
                   tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=r"dup.parquet: cannot read parquet file"):
        load_dataset("csv", str(tmp_path / "dup.parquet"), user_col="a", item_col="a")


@pytest.mark.parametrize("extra", ["", "2::7::4::978300000\n", "2::7:::4::978300000\n",
                                   "2::7::4::97830:0000\n", "2:::7::4::978300000\n",
                                   "2::7::4::978300000::\n", "2::007::4::1\n"])
def test_ml_1m_double_colon_ratings_match_the_exact_reader(tmp_path, monkeypatch, extra):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n" + extra)
    (tmp_path / "movies.dat").write_text("661::A (1996)::Drama\n1193::B (1975)::Drama\n")
    plain = extra in ("", "2::7::4::978300000\n", "2::007::4::1\n")
    kinds = {"user": "id", "item": "id", "rating": "number", "timestamp": "time"}
    table = columnar.read_columns(tmp_path / "ratings.dat", "::", kinds, header=False,
                                 columns=list(kinds))
    assert (table is not None) == plain

    def outcome():
        try:
            return load_dataset("ml-1m", str(tmp_path), on_bad_rows="error")
        except DataError as err:
            return str(err)

    got = outcome()
    _exact(monkeypatch)
    want = outcome()
    if isinstance(got, str) or isinstance(want, str):
        assert got == want
    else:
        _same(got, want)
