"""The synthetic data set: deterministic, realistic in shape, readable text."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hybridrec.data import TEXT_FIELDS, generate_synthetic, load_dataset
from hybridrec.data.synthetic_text import TOPICS


@pytest.fixture(scope="module")
def data():
    return generate_synthetic()


def test_same_seed_same_data_other_seed_other_data():
    a, b = generate_synthetic(300, 200, seed=4), generate_synthetic(300, 200, seed=4)
    assert np.array_equal(a.users, b.users) and np.array_equal(a.items, b.items)
    assert np.array_equal(a.timestamps, b.timestamps)
    assert a.item_table.equals(b.item_table)
    c = generate_synthetic(300, 200, seed=5)
    assert len(c) != len(a) or not np.array_equal(c.items, a.items)
    assert not c.item_table["title"].equals(a.item_table["title"])


def test_default_size_and_speed():
    t = time.perf_counter()
    data = generate_synthetic()
    elapsed = time.perf_counter() - t
    assert (data.n_users, data.n_items) == (3000, 2000)
    assert 80_000 <= len(data) <= 120_000
    assert elapsed < 4.0  # about 0.7 s on 2 CPU cores; generous for busy machines


def test_users_and_popularity_are_skewed(data):
    users = data.user_counts()
    assert users.min() >= 5 and users.max() > 8 * np.median(users)
    items = np.sort(data.item_counts())[::-1]
    top10 = items[: len(items) // 10].sum() / items.sum()
    assert 0.3 < top10 < 0.8  # power-law-ish: 10% of items get a third or more
    assert (items < 10).sum() > 0.02 * len(items)  # a tail of rarely seen items


def test_no_repeated_pairs_and_time_order(data):
    pair = data.users * data.n_items + data.items
    assert len(np.unique(pair)) == len(data)
    order = np.lexsort((data.timestamps, data.users))
    assert np.array_equal(order, np.arange(len(data)))  # rows are by user, then time
    span = data.timestamps.max() - data.timestamps.min()
    assert 300 * 86400 < span <= 365 * 86400


def test_text_is_readable_and_follows_topics(data):
    table = data.item_table
    assert list(table.columns) == list(TEXT_FIELDS)
    for col in TEXT_FIELDS:
        assert (table[col].str.len() > 0).all(), col
    words = table["title"].str.split().str.len()
    assert words.between(2, 5).all()  # 2-4 words, plus a number for a rare sequel
    assert table["title"].is_unique
    assert table["title"].map(lambda t: all(w[0].isupper() or w in ("and", "of", "the") or w.isdigit()
                                            for w in t.split())).all()
    assert table["description"].str.match(r"^[A-Z].*\.$").all()
    names = {t.name for t in TOPICS}
    primary = table["genres"].str.split(", ").str[0]
    assert set(primary) <= names
    topic_names = np.array([t.name for t in TOPICS])
    assert (primary.to_numpy() == topic_names[data.meta["item_topic"]]).all()


def test_users_concentrate_on_few_topics(data):
    topic = data.meta["item_topic"][data.items]
    k = int(topic.max()) + 1
    counts = np.zeros((data.n_users, k))
    np.add.at(counts, (data.users, topic), 1)
    share_top = counts.max(1) / counts.sum(1)
    assert share_top.mean() > 3 / k  # uniform tastes would give about 1/k


def test_registry_name_and_ids_differ_from_indices():
    data = load_dataset("synthetic", n_users=50, n_items=40, seed=1)
    assert data.user_vocab.ids[0] == "u01" and data.item_vocab.ids[0] == "i01"
    with pytest.raises(ValueError, match="takes no path"):
        load_dataset("synthetic", "somewhere")
    with pytest.raises(ValueError, match="takes no option 'users'"):
        load_dataset("synthetic", users=5)
