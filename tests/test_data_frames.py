"""``Interactions.from_pandas`` loads what the ``csv`` loader loads from the same rows."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from hybridrec.data import DataError, Interactions
from hybridrec.data.build import LoadOptions
from hybridrec.data.tabular import load_csv

INTER = """user_id,item_id,timestamp,rating
10,2,100,5
2,2,200,3
10,1,300,4
2,10,400,1
7,2,150,2.5
10,2,500,4
u9,99,600,5
"""
ITEMS = """item_id,title,genres,description
1,Alpha,Drama,
2,"Beta, the sequel",Comedy,A film
10,Gamma,Drama,
99,Never Rated,Horror,  padded  
55,Cold One,,Nobody saw it
"""


def assert_same(a: Interactions, b: Interactions) -> None:
    """Every array, both vocabularies, the item table and the cleaning counts."""
    assert a.user_vocab == b.user_vocab and a.item_vocab == b.item_vocab
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.items, b.items)
    for attr in ("timestamps", "ratings"):
        x, y = getattr(a, attr), getattr(b, attr)
        assert (x is None) == (y is None)
        if x is not None:
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
    assert (a.item_table is None) == (b.item_table is None)
    if a.item_table is not None:
        pd.testing.assert_frame_equal(a.item_table, b.item_table)
    assert a.meta["load_info"] == b.meta["load_info"]


@pytest.fixture
def files(tmp_path):
    inter, items = tmp_path / "inter.csv", tmp_path / "items.csv"
    inter.write_text(INTER)
    items.write_text(ITEMS)
    return inter, items


@pytest.mark.parametrize("options", [
    LoadOptions(),
    LoadOptions(duplicates="keep_last", rating_threshold=3),
    LoadOptions(min_user_interactions=2, min_item_interactions=2),
    LoadOptions(missing_items="drop"),
])
def test_same_interactions_as_the_csv_loader(files, options):
    inter, items = files
    cols = dict(time_col="timestamp", rating_col="rating")
    want = load_csv(interactions=inter, items=items, options=options, **cols)
    got = Interactions.from_pandas(pd.read_csv(inter), pd.read_csv(items), options=options, **cols)
    assert_same(got, want)


def test_cold_items_text_and_string_ids_match(files):
    inter, items = files
    got = Interactions.from_pandas(pd.read_csv(inter), pd.read_csv(items))
    assert_same(got, load_csv(interactions=inter, items=items))
    assert got.user_vocab.to_list() == ["10", "2", "7", "u9"]  # strings: sorted as text
    cold = got.item_text(got.item_vocab.index("55"))
    assert cold == {"title": "Cold One", "description": "Nobody saw it", "genres": "", "tags": ""}
    assert got.item_text(got.item_vocab.index("99"))["description"] == "padded"
    assert got.timestamps is None and got.ratings is None


def test_frames_read_as_strings_and_without_items_match(files):
    inter, _ = files
    frame = pd.read_csv(inter, dtype=str)
    assert_same(Interactions.from_pandas(frame, time_col="timestamp"),
                load_csv(inter, time_col="timestamp"))


def test_float_ids_from_a_gap_stay_integers(tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("user_id,item_id\n1,5\n2,\n3,7\n")
    frame = pd.read_csv(path)
    assert frame["item_id"].dtype == np.float64
    opts = LoadOptions(on_bad_rows="skip")
    got = Interactions.from_pandas(frame, options=opts)
    assert_same(got, load_csv(path, options=opts))
    assert got.item_vocab.to_list() == ["5", "7"]


def test_datetime_timestamps_become_unix_seconds():
    frame = pd.DataFrame({
        "user_id": [1, 1, 2],
        "item_id": [1, 2, 1],
        "when": pd.to_datetime(["2021-01-01", "2021-01-01 00:00:10.9", "1970-01-01"],
                               format="ISO8601"),
    })
    got = Interactions.from_pandas(frame, time_col="when")
    assert got.timestamps.tolist() == [1609459200, 1609459210, 0]
    aware = frame.assign(when=frame["when"].dt.tz_localize("Europe/Paris"))
    assert Interactions.from_pandas(aware, time_col="when").timestamps.tolist() == [
        1609455600, 1609455610, -3600]


def test_time_units_and_iso_strings():
    frame = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 1],
                          "ms": [1588615855070, 1588615855999],
                          "iso": ["2021-01-01T00:00:10Z", "2021-01-01"]})
    assert Interactions.from_pandas(frame, time_col="ms", time_unit="ms").timestamps.tolist() == [
        1588615855, 1588615855]
    assert Interactions.from_pandas(frame, time_col="iso").timestamps.tolist() == [
        1609459210, 1609459200]
    with pytest.raises(ValueError, match="time_unit must be one of"):
        Interactions.from_pandas(frame, time_col="ms", time_unit="minutes")


def test_missing_columns_are_named_with_the_frames_columns():
    frame = pd.DataFrame({"user": [1], "item_id": [2]})
    with pytest.raises(DataError, match=r"interactions DataFrame: user_col 'user_id' is not a "
                                        r"column; its columns are \['user', 'item_id'\]"):
        Interactions.from_pandas(frame)
    ok = frame.rename(columns={"user": "user_id"})
    with pytest.raises(DataError, match="time_col 'ts'"):
        Interactions.from_pandas(ok, time_col="ts")
    items = pd.DataFrame({"id": [2], "name": ["x"]})
    with pytest.raises(DataError, match=r"items DataFrame: item_id_col 'item_id' is not a column"):
        Interactions.from_pandas(ok, items)
    with pytest.raises(DataError, match=r"items DataFrame: text_cols\['title'\] 'title'"):
        Interactions.from_pandas(ok, items, item_id_col="id", text_cols={"title": "title"})
    with pytest.raises(ValueError, match="'summary' is not a text field"):
        Interactions.from_pandas(ok, items, item_id_col="id", text_cols={"summary": "name"})


def test_bad_row_names_the_row_and_column(caplog):
    frame = pd.DataFrame({"user_id": [1, 2, None, 4], "item_id": [1, 1, 2, 2],
                          "rating": ["5", "4", "3", "oops"]})
    with pytest.raises(DataError) as err:
        Interactions.from_pandas(frame, rating_col="rating")
    assert err.value.path == "interactions DataFrame"
    assert "row 3 (index 2): missing value in column 'user_id'" in str(err.value)
    with pytest.raises(DataError, match=r"row 3 \(index 3\): cannot read 'oops' in column 'rating'"):
        Interactions.from_pandas(frame.dropna(), rating_col="rating")
    with caplog.at_level(logging.WARNING, logger="hybridrec.data"):
        data = Interactions.from_pandas(frame, rating_col="rating",
                                        options=LoadOptions(on_bad_rows="skip"))
    assert len(data) == 2 and "skipped 2 bad rows (first at row 3, 4)" in caplog.text


def test_duplicates_and_repeated_item_ids_name_rows():
    frame = pd.DataFrame({"user_id": [1, 2, 1], "item_id": [5, 5, 5]})
    with pytest.raises(DataError, match=r"occur at interactions DataFrame, row 1 \(index 0\) and again at "
                                        r"interactions DataFrame, row 3 \(index 2\)"):
        Interactions.from_pandas(frame, options=LoadOptions(duplicates="error"))
    items = pd.DataFrame({"item_id": [5, 6, 5], "title": ["a", "b", "c"]})
    with pytest.raises(DataError, match=r"items DataFrame: row 3 \(index 2\): item id '5' occurs again"):
        Interactions.from_pandas(frame, items)


def test_list_cells_join_in_text_and_fail_in_ids():
    frame = pd.DataFrame({"user_id": [1], "item_id": ["a"]})
    items = pd.DataFrame({"item_id": ["a", "b"], "name": ["A", None],
                          "about": [["one", "two"], []], "more": ["three", np.nan]})
    data = Interactions.from_pandas(frame, items, text_cols={"title": "name",
                                                             "description": ["about", "more"]})
    assert data.item_table["description"].tolist() == ["one two three", ""]
    assert data.item_table["title"].tolist() == ["A", ""]
    bad = pd.DataFrame({"user_id": [1], "item_id": [["a", "b"]]})
    with pytest.raises(DataError, match=r"row 1: column 'item_id' holds a list"):
        Interactions.from_pandas(bad)
    with pytest.raises(ValueError, match="no items frame"):
        Interactions.from_pandas(frame, text_cols={"title": "name"})


def test_ml_latest_small_through_pandas_matches_the_csv_loader(dataset_dir):
    folder = dataset_dir("ml-latest-small")
    ratings, movies = folder / "ratings.csv", folder / "movies.csv"
    cols = dict(user_col="userId", item_col="movieId", time_col="timestamp", rating_col="rating")
    want = load_csv(interactions=ratings, items=movies, **cols)
    got = Interactions.from_pandas(pd.read_csv(ratings), pd.read_csv(movies), **cols)
    assert_same(got, want)
    assert (got.n_users, got.n_items, len(got)) == (610, 9742, 100_836)
