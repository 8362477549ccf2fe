"""Loaders on the real data sets (skipped when the data set folder is absent)."""

from __future__ import annotations

import time

import numpy as np

from hybridrec.data import load_dataset, make_split


def test_ml_100k_counts_and_text(dataset_dir):
    data = load_dataset("ml-100k", str(dataset_dir("ml-100k")))
    assert (data.n_users, data.n_items, len(data)) == (943, 1682, 100_000)
    assert data.timestamps is not None and set(np.unique(data.ratings)) == {1, 2, 3, 4, 5}
    first = data.item_text(data.item_vocab.index(1))
    assert first == {"title": "Toy Story (1995)", "description": "",
                     "genres": "Animation, Children's, Comedy", "tags": ""}
    positives = load_dataset("ml-100k", str(dataset_dir("ml-100k")), rating_threshold=4)
    assert len(positives) == 55_375 and positives.n_items == 1682  # catalogue kept whole


def test_ml_latest_small_counts_tags_and_cold_items(dataset_dir):
    data = load_dataset("ml-latest-small", str(dataset_dir("ml-latest-small")))
    assert (data.n_users, data.n_items, len(data)) == (610, 9742, 100_836)
    assert (data.item_counts() == 0).sum() == 18  # movies nobody rated stay in the catalogue
    toy = data.item_text(data.item_vocab.index(1))
    assert toy["title"] == "Toy Story (1995)" and toy["tags"] == "pixar, fun"
    assert toy["genres"] == "Adventure, Animation, Children, Comedy, Fantasy"
    assert data.user_vocab.to_list()[:3] == ["1", "2", "3"]  # numeric, not string order
    split = make_split(data, "leave_last_out")
    assert len(split.test) == 610


def test_gowalla_counts_fold_and_speed(dataset_dir):
    t = time.perf_counter()
    data = load_dataset("gowalla", str(dataset_dir("gowalla")))
    elapsed = time.perf_counter() - t
    assert (data.n_users, data.n_items) == (29_858, 40_981)
    fold = data.meta["fold"]
    assert (fold == 0).sum() == 810_128 and (fold == 1).sum() == 217_242
    assert data.item_vocab.index("40980") == 40_980 and data.user_vocab.index("0") == 0
    split = make_split(data, "given")
    assert (len(split.train), len(split.test)) == (810_128, 217_242)
    assert elapsed < 5.0  # about 0.5 s on 2 CPU cores
