"""Hugging Face ``datasets`` sources: local jsonl/parquet files in the Amazon Reviews 2023
layout and a generic layout, read with no network."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hybridrec.data import DataError, Interactions, load_dataset
from hybridrec.data.build import LoadOptions
from hybridrec.data.hf import amazon_2023_file, builder_for, load_amazon2023, load_hf

pytest.importorskip("datasets")

MS = 1_588_615_855_070  # 2020-05-04, milliseconds since the epoch
REVIEWS = [
    {"rating": 5.0, "title": "great", "text": "Love it", "asin": "B01X", "parent_asin": "B01",
     "user_id": "AE1", "timestamp": MS, "helpful_vote": 0, "verified_purchase": True},
    {"rating": 2.0, "title": "meh", "text": "No", "asin": "B02", "parent_asin": "B02",
     "user_id": "AE2", "timestamp": MS + 1_999, "helpful_vote": 3, "verified_purchase": False},
    {"rating": 4.0, "title": "ok", "text": "Fine", "asin": "B01Y", "parent_asin": "B01",
     "user_id": "AE2", "timestamp": MS + 60_000, "helpful_vote": 1, "verified_purchase": True},
    {"rating": 3.0, "title": "again", "text": "Variant", "asin": "B01Z", "parent_asin": "B01",
     "user_id": "AE1", "timestamp": MS + 120_000, "helpful_vote": 0, "verified_purchase": True},
]
META = [
    {"main_category": "All Beauty", "title": "Hair Oil", "average_rating": 4.1,
     "features": ["Argan", "100 ml"], "description": ["Smooth hair.", "Made in France."],
     "price": None, "categories": ["Beauty", "Hair Care"], "parent_asin": "B01"},
    {"main_category": "All Beauty", "title": "Comb", "average_rating": 3.0, "features": [],
     "description": [], "price": 4.5, "categories": [], "parent_asin": "B02"},
    {"main_category": "All Beauty", "title": "Never Reviewed", "average_rating": None,
     "features": ["New"], "description": ["Cold item."], "price": 9.0,
     "categories": ["Beauty"], "parent_asin": "B99"},
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def amazon(tmp_path):
    return write_jsonl(tmp_path / "All_Beauty.jsonl", REVIEWS), \
        write_jsonl(tmp_path / "meta_All_Beauty.jsonl", META)


def test_amazon_2023_jsonl_counts_ids_text_and_times(amazon, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    reviews, meta = amazon
    data = load_amazon2023(str(reviews), str(meta))
    # AE1 reviewed two variants of B01: one (user, item) pair, the earliest review kept
    assert (data.n_users, data.n_items, len(data)) == (2, 3, 3)
    assert data.user_vocab.to_list() == ["AE1", "AE2"]
    assert data.item_vocab.to_list() == ["B01", "B02", "B99"]
    assert data.timestamps.tolist() == [1588615855, 1588615857, 1588615915]  # ms -> s, floored
    assert data.ratings.tolist() == [5.0, 2.0, 4.0]
    assert data.item_text(0) == {"title": "Hair Oil",
                                 "description": "Smooth hair. Made in France. Argan 100 ml",
                                 "genres": "Beauty Hair Care", "tags": ""}
    assert data.item_text(1)["description"] == "" and data.item_text(1)["genres"] == ""
    cold = data.item_vocab.index("B99")
    assert data.item_counts()[cold] == 0 and data.item_text(cold)["title"] == "Never Reviewed"
    assert data.name == "amazon-2023" and data.meta["load_info"]["dropped_duplicates"] == 1


def test_amazon_2023_parquet_and_gzip_and_threshold(amazon, tmp_path):
    import gzip

    reviews, meta = amazon
    pq = tmp_path / "reviews.parquet"
    pd.read_json(reviews, lines=True).to_parquet(pq)
    gz = tmp_path / "meta.jsonl.gz"
    gz.write_bytes(gzip.compress(meta.read_bytes()))
    data = load_amazon2023(str(pq), str(gz), rating_threshold=4)
    assert len(data) == 2 and data.ratings.min() >= 4
    assert data.n_items == 3  # the catalogue is kept whole
    assert data.item_vocab == load_amazon2023(str(reviews), str(meta)).item_vocab
    with pytest.raises(ValueError, match="give one"):
        load_amazon2023(str(pq), rating_threshold=4, options=LoadOptions(rating_threshold=3))


def test_amazon_2023_without_meta_and_by_registry(amazon, tmp_path):
    reviews, meta = amazon
    bare = load_amazon2023(str(reviews))
    assert bare.item_table is None and bare.n_items == 2
    # the registry form of --data-path reviews --set data.options.meta=<name next to it>
    data = load_dataset("amazon-2023", str(reviews), meta=meta.name, rating_threshold=3)
    assert len(data) == 2 and data.n_items == 3 and data.item_text(0)["title"] == "Hair Oil"
    with pytest.raises(ValueError, match="takes no option 'items'.*meta, repo, name, load_kwargs"):
        load_dataset("amazon-2023", str(reviews), items="x")


def test_generic_layout_jsonl_and_parquet_items(tmp_path):
    inter = write_jsonl(tmp_path / "events.jsonl", [
        {"uid": 7, "song": "s1", "played_at": "2021-01-01T00:00:10Z", "stars": 3},
        {"uid": 8, "song": "s2", "played_at": "2021-01-02T00:00:00Z", "stars": 5},
        {"uid": 7, "song": "s2", "played_at": "2021-01-03T00:00:00Z", "stars": 4},
    ])
    items = tmp_path / "songs.parquet"
    pd.DataFrame({"song": ["s1", "s2", "s3"], "title": ["One", "Two", "Three"],
                  "tags": [["rock", "live"], [], None]}).to_parquet(items)
    data = load_hf(str(inter), items=str(items), user_col="uid", item_col="song",
                   time_col="played_at", rating_col="stars")
    assert data.user_vocab.to_list() == ["7", "8"] and data.n_items == 3
    assert data.timestamps.tolist() == [1609459210, 1609545600, 1609632000]
    assert data.item_table["title"].tolist() == ["One", "Two", "Three"]  # same-named columns
    assert data.item_table["tags"].tolist() == ["rock live", "", ""]
    assert data.name == "events"
    # the packaged builder with data_files reads the same rows
    same = load_hf("json", data_files=str(inter), items_data_files=str(items), user_col="uid",
                   item_col="song", time_col="played_at", rating_col="stars")
    assert same.item_vocab == data.item_vocab and same.timestamps.tolist() == data.timestamps.tolist()
    through_registry = load_dataset("huggingface", str(inter), items=str(items), user_col="uid",
                                    item_col="song", text_cols={"title": "title"},
                                    load_kwargs={"cache_dir": str(tmp_path / "cache")})
    assert through_registry.item_table["tags"].tolist() == ["", "", ""]
    assert (tmp_path / "cache").is_dir()


def test_matches_from_pandas_on_the_same_rows(amazon):
    reviews, meta = amazon
    frame, items = pd.read_json(reviews, lines=True), pd.read_json(meta, lines=True)
    want = Interactions.from_pandas(frame, items, item_col="parent_asin", time_col="timestamp",
                                    rating_col="rating", time_unit="ms",
                                    text_cols={"title": "title"})
    got = load_hf(str(reviews), items=str(meta), item_col="parent_asin", time_col="timestamp",
                  rating_col="rating", time_unit="ms", text_cols={"title": "title"})
    assert got.item_vocab == want.item_vocab and got.user_vocab == want.user_vocab
    assert got.items.tolist() == want.items.tolist()
    assert got.timestamps.tolist() == want.timestamps.tolist()
    pd.testing.assert_frame_equal(got.item_table, want.item_table)


def test_missing_column_names_the_column_and_the_source(amazon, tmp_path):
    reviews, meta = amazon
    with pytest.raises(DataError) as err:
        load_hf(str(reviews), item_col="asin_id")
    assert err.value.path == f"interactions {reviews}"
    assert "item_col 'asin_id' is not a column; its columns are ['rating', 'title'" in str(err.value)
    bad_meta = write_jsonl(tmp_path / "meta_bad.jsonl", [{"parent_asin": "B01", "title": "x"}])
    with pytest.raises(DataError, match=r"items .*meta_bad.jsonl: text_cols\['description'\] "
                                        r"'description' is not a column"):
        load_amazon2023(str(reviews), str(bad_meta))


def test_bad_rows_and_bad_sources(tmp_path):
    inter = write_jsonl(tmp_path / "r.jsonl", [{"user_id": "a", "item_id": "x", "t": 5},
                                               {"user_id": "", "item_id": "y", "t": 6}])
    with pytest.raises(DataError, match=r"interactions .*r.jsonl: row 2 \(index 1\): missing "
                                        r"value in column 'user_id'"):
        load_hf(str(inter))
    assert len(load_hf(str(inter), options=LoadOptions(on_bad_rows="skip"))) == 1
    with pytest.raises(DataError, match="Amazon Reviews 2023 review file not found"):
        load_amazon2023(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match=r"nope.parquet: file not found"):
        load_hf(str(tmp_path / "nope.parquet"))  # not taken for a hub name
    with pytest.raises(DataError, match="cannot tell the file type"):
        builder_for(tmp_path / "r.txt")
    (tmp_path / "broken.jsonl").write_text('{"user_id": "a", "item_id"\n')
    with pytest.raises(DataError, match="datasets cannot load it"):
        load_hf(str(tmp_path / "broken.jsonl"))
    with pytest.raises(DataError, match=r"the 'json' builder needs data_files"):
        load_hf("json")


def test_amazon_hub_references_name_the_repository_files():
    assert amazon_2023_file("raw_review_All_Beauty", "review") == (
        "hf://datasets/McAuley-Lab/Amazon-Reviews-2023/raw/review_categories/All_Beauty.jsonl")
    assert amazon_2023_file("All_Beauty", "meta") == (
        "hf://datasets/McAuley-Lab/Amazon-Reviews-2023/raw/meta_categories/meta_All_Beauty.jsonl")
    with pytest.raises(ValueError, match="names meta data, given as the review source"):
        amazon_2023_file("raw_meta_All_Beauty", "review")
    assert builder_for("x/meta_All_Beauty.jsonl.gz") == "json"
