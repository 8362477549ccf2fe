"""Known-answer tests of the generic ``csv`` loader and the shared cleaning rules."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from hybridrec.data import DataError, load_dataset

INTER = """user_id,item_id,timestamp,rating
10,2,100,5
2,2,200,3
10,1,300,4
2,10,400,1
"""
ITEMS = """item_id,title,genres
1,Alpha,Drama
2,"Beta, the sequel",Comedy
10,Gamma,Drama
99,Never Rated,Horror
"""


def write(folder, name, text, encoding="utf-8"):
    path = folder / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def load(tmp_path, inter=INTER, items=None, **options):
    write(tmp_path, "inter.csv", inter)
    if items is not None:
        write(tmp_path, "items.csv", items)
        options["items"] = "items.csv"
    return load_dataset("csv", str(tmp_path), interactions="inter.csv", **options)


def test_loads_rows_ids_times_and_ratings(tmp_path):
    data = load(tmp_path, time_col="timestamp", rating_col="rating")
    assert (data.n_users, data.n_items, len(data)) == (2, 3, 4)
    # Vocabularies sort numerically when every id is an integer.
    assert data.user_vocab.to_list() == ["2", "10"]
    assert data.item_vocab.to_list() == ["1", "2", "10"]
    frame = data.to_frame()
    assert frame["user_id"].tolist() == ["10", "2", "10", "2"]
    assert frame["item_id"].tolist() == ["2", "2", "1", "10"]
    assert data.timestamps.tolist() == [100, 200, 300, 400]
    assert data.ratings.tolist() == [5, 3, 4, 1]
    assert data.item_table is None


def test_items_file_keeps_cold_items_with_text_in_index_order(tmp_path):
    data = load(tmp_path, items=ITEMS)
    assert data.item_vocab.to_list() == ["1", "2", "10", "99"]
    assert data.item_counts().tolist() == [1, 2, 1, 0]
    assert data.item_table["title"].tolist() == ["Alpha", "Beta, the sequel", "Gamma", "Never Rated"]
    assert data.item_table["description"].tolist() == ["", "", "", ""]
    assert data.item_text(data.item_vocab.index("99"))["genres"] == "Horror"


def test_items_missing_from_items_file(tmp_path, caplog):
    items = "item_id,title\n1,Alpha\n2,Beta\n"
    with caplog.at_level(logging.WARNING, logger="hybridrec.data"):
        data = load(tmp_path, items=items)
    assert data.item_text(data.item_vocab.index("10"))["title"] == ""
    assert "1 interactions (1 items) name items missing from the items file" in caplog.text
    dropped = load(tmp_path, items=items, missing_items="drop")
    assert len(dropped) == 3 and "10" not in dropped.item_vocab
    with pytest.raises(DataError, match="item '10' .*line 5.* not in the items file"):
        load(tmp_path, items=items, missing_items="error")


def test_malformed_row_names_file_and_line(tmp_path):
    bad = INTER + "2,1,500,4,extra\n"
    with pytest.raises(DataError) as err:
        load(tmp_path, inter=bad)
    assert err.value.line == 6 and err.value.path.endswith("inter.csv")
    assert "inter.csv, line 6" in str(err.value) and "expected 4 fields, found 5" in str(err.value)


def test_bad_rows_skipped_and_counted(tmp_path, caplog):
    bad = INTER + "2,1,500,4,extra\n,1,600,2\n3,3,oops,2\n"
    with caplog.at_level(logging.WARNING, logger="hybridrec.data"):
        data = load(tmp_path, inter=bad, time_col="timestamp", on_bad_rows="skip")
    assert len(data) == 4
    assert "skipped 3 bad rows (first at line 6, 7, 8)" in caplog.text


def test_line_numbers_count_quoted_newlines_and_blank_lines(tmp_path):
    items = 'item_id,title\n1,"two\nline title"\n\n2,Beta\n2,Again\n'
    with pytest.raises(DataError, match=r"items.csv, line 6: item id '2' occurs again"):
        load(tmp_path, items=items)


def test_unknown_column_lists_the_files_columns(tmp_path):
    with pytest.raises(DataError, match=r"time_col 'time' is not a column.*'user_id', 'item_id', "
                                        r"'timestamp', 'rating'"):
        load(tmp_path, time_col="time")
    with pytest.raises(DataError, match="user_col 'user'"):
        load(tmp_path, user_col="user")


def test_non_utf8_text_names_line(tmp_path):
    write(tmp_path, "inter.csv", INTER.encode() + "7,caf\xe9,1,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"inter.csv, line 6: text is not valid utf-8"):
        load_dataset("csv", str(tmp_path / "inter.csv"))


def test_timestamps_unix_or_iso_and_bad_ones(tmp_path):
    iso = "user_id,item_id,when\n1,1,2021-01-01\n1,2,2021-01-01T00:00:10Z\n2,1,2021-01-01T01:00:00+01:00\n"
    data = load(tmp_path, inter=iso, time_col="when")
    assert data.timestamps.tolist() == [1609459200, 1609459210, 1609459200]
    bad = "user_id,item_id,when\n1,1,1600000000\n1,2,yesterday\n"
    with pytest.raises(DataError, match=r"line 3: cannot read 'yesterday' in column 'when'"):
        load(tmp_path, inter=bad, time_col="when")
    missing = "user_id,item_id,when\n1,1,1600000000\n1,2,\n"
    with pytest.raises(DataError, match=r"line 3: missing timestamp"):
        load(tmp_path, inter=missing, time_col="when")


def test_duplicates_rules(tmp_path):
    dup = "user_id,item_id,timestamp\n1,5,300\n1,5,100\n2,5,50\n1,5,200\n"
    first = load(tmp_path, inter=dup, time_col="timestamp")
    assert sorted(first.timestamps.tolist()) == [50, 100]  # earliest by time, not file order
    assert first.meta["load_info"]["dropped_duplicates"] == 2
    last = load(tmp_path, inter=dup, time_col="timestamp", duplicates="keep_last")
    assert sorted(last.timestamps.tolist()) == [50, 300]
    with pytest.raises(DataError, match=r"user '1' and item '5' occur at .*line 2 and again at .*line 3"):
        load(tmp_path, inter=dup, time_col="timestamp", duplicates="error")
    with pytest.raises(ValueError, match="duplicates must be one of"):
        load(tmp_path, inter=dup, duplicates="drop")


def test_rating_threshold_and_min_counts_applied_once(tmp_path):
    data = load(tmp_path, rating_col="rating", rating_threshold=4)
    assert data.ratings.tolist() == [5, 4] and data.user_vocab.to_list() == ["10"]
    with pytest.raises(DataError, match="no ratings"):
        load(tmp_path, rating_threshold=4)
    # Item 3 has 2 rows, but one belongs to user 9 (1 row): with a single pass it stays.
    rows = "user_id,item_id\n1,3\n1,4\n2,4\n2,5\n9,3\n"
    once = load(tmp_path, inter=rows, min_user_interactions=2, min_item_interactions=2)
    assert once.to_frame().values.tolist() == [["1", "3"], ["1", "4"], ["2", "4"]]
    assert once.user_vocab.to_list() == ["1", "2"]


def test_string_ids_sort_as_strings_and_round_trip(tmp_path):
    rows = "user_id,item_id\nbob,007\nalice,7\nbob,x\n"
    data = load(tmp_path, inter=rows)
    assert data.user_vocab.to_list() == ["alice", "bob"]
    assert data.item_vocab.to_list() == ["007", "7", "x"]  # "007" and "7" stay distinct
    assert data.to_frame().values.tolist() == [["bob", "007"], ["alice", "7"], ["bob", "x"]]
    assert data.item_vocab.index("7") == 1


def test_parquet_and_tsv_by_extension(tmp_path):
    frame = pd.DataFrame({"u": [3, 1], "i": ["a", "b"], "t": pd.to_datetime(["2021-01-01", "2021-01-02"])})
    frame.to_parquet(tmp_path / "inter.parquet")
    data = load_dataset("csv", str(tmp_path / "inter.parquet"), user_col="u", item_col="i",
                        time_col="t")
    assert data.user_vocab.to_list() == ["1", "3"]
    assert data.timestamps.tolist() == [1609459200, 1609545600]
    write(tmp_path, "inter.tsv", "user_id\titem_id\n1\t2\n")
    assert len(load_dataset("csv", str(tmp_path / "inter.tsv"))) == 1


def test_registry_errors_list_valid_names(tmp_path):
    with pytest.raises(ValueError, match="valid names: synthetic, ml-100k"):
        load_dataset("movielens")
    with pytest.raises(ValueError, match="takes no option 'colour'.*user_col"):
        load_dataset("csv", str(tmp_path), colour="red")
    with pytest.raises(DataError, match="needs interactions="):
        load_dataset("csv", str(tmp_path))
