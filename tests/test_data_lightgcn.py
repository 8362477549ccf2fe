"""The LightGCN ``user item item ...`` format (gowalla, yelp2018, amazon-book)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hybridrec.data import DataError, load_dataset, make_split


def folder(tmp_path, train, test):
    (tmp_path / "train.txt").write_text(train)
    (tmp_path / "test.txt").write_text(test)
    return str(tmp_path)


def test_reads_both_files_with_fold_and_identity_ids(tmp_path):
    path = folder(tmp_path, "0 0 1\n1 2\n2\n3 1 3  \r\n", "0 2\n1 0\n")
    data = load_dataset("gowalla", path)
    assert (data.n_users, data.n_items, len(data)) == (4, 4, 7)
    # Contiguous 0-based ids: index i is id i; user 2 (no items) is still known.
    assert data.user_vocab.to_list() == ["0", "1", "2", "3"]
    assert data.item_vocab.to_list() == ["0", "1", "2", "3"]
    assert data.users.tolist() == [0, 0, 1, 3, 3, 0, 1]
    assert data.items.tolist() == [0, 1, 2, 1, 3, 2, 0]
    assert data.meta["fold"].dtype == np.int8
    assert data.meta["fold"].tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert data.timestamps is None and data.item_table is None
    split = make_split(data, "given")
    assert len(split.train) == 5 and len(split.test) == 2
    assert split.test.meta["fold"].tolist() == [1, 1]  # subset slices per-row meta


def test_malformed_token_names_file_and_line(tmp_path):
    path = folder(tmp_path, "0 0 1\n1 2 x3\n", "0 2\n")
    with pytest.raises(DataError) as err:
        load_dataset("gowalla", path)
    assert err.value.path.endswith("train.txt") and err.value.line == 2
    assert "malformed token 'x3'" in str(err.value)
    path = folder(tmp_path, "0 0\n", "0 1\n1 -2\n")
    with pytest.raises(DataError, match=r"test.txt, line 2: malformed token '-2'"):
        load_dataset("gowalla", path)


def test_skip_drops_malformed_lines(tmp_path, caplog):
    path = folder(tmp_path, "0 0 1\n1 2 x\n2 3\n", "0 2\n")
    with caplog.at_level(logging.WARNING, logger="hybridrec.data"):
        data = load_dataset("yelp2018", path, on_bad_rows="skip")
    assert data.to_frame().values.tolist() == [["0", "0"], ["0", "1"], ["2", "3"], ["0", "2"]]
    assert "skipped 1 malformed lines (first at line 2)" in caplog.text


def test_duplicates_and_options(tmp_path):
    path = folder(tmp_path, "0 0 0 1\n", "0 1\n")
    with pytest.raises(DataError, match=r"train.txt, line 1 and again at .*train.txt, line 1"):
        load_dataset("amazon-book", path, duplicates="error")
    data = load_dataset("amazon-book", path)
    assert len(data) == 2 and data.meta["fold"].tolist() == [0, 0]
    with pytest.raises(ValueError, match="takes no option 'rating_threshold'"):
        load_dataset("gowalla", path, rating_threshold=4)


def test_missing_file_lists_folder(tmp_path):
    (tmp_path / "train.txt").write_text("0 1\n")
    with pytest.raises(DataError, match=r"expected file 'test.txt' .*\['train.txt'\]"):
        load_dataset("gowalla", str(tmp_path))
