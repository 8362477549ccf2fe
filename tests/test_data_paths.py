"""Finding data set folders and the (offline-tested) download path."""

from __future__ import annotations

import io
import urllib.error
import zipfile
from pathlib import Path

import pytest

from hybridrec.data import DataError, load_dataset
from hybridrec.data import paths


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.delenv("HYBRIDREC_DATA", raising=False)
    monkeypatch.setenv("HYBRIDREC_CACHE", str(tmp_path / "cache"))
    return monkeypatch


def test_roots_from_environment(env, tmp_path):
    assert paths.data_root() is None
    assert paths.cache_dir() == tmp_path / "cache"
    env.setenv("HYBRIDREC_DATA", str(tmp_path / "data"))
    assert paths.data_root() == tmp_path / "data"
    env.delenv("HYBRIDREC_CACHE")
    assert paths.cache_dir() == Path.home() / ".cache" / "hybridrec"


def test_lookup_order(env, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        paths.resolve_dataset_dir("ml-100k", tmp_path / "nope")
    cached = tmp_path / "cache" / "datasets" / "ml-100k"
    cached.mkdir(parents=True)
    assert paths.resolve_dataset_dir("ml-100k") == cached
    (tmp_path / "data" / "ml-100k").mkdir(parents=True)
    env.setenv("HYBRIDREC_DATA", str(tmp_path / "data"))
    assert paths.resolve_dataset_dir("ml-100k") == tmp_path / "data" / "ml-100k"
    assert paths.resolve_dataset_dir("ml-100k", tmp_path) == tmp_path


def test_no_download_says_where_to_put_files(env, tmp_path):
    with pytest.raises(DataError, match=r"not found and downloads are off.*ml-1m.zip.*HYBRIDREC_DATA"):
        load_dataset("ml-1m", download=False)


def test_network_failure_is_a_clear_error(env, tmp_path):
    def fail(url, timeout):
        raise urllib.error.URLError("no route to host")

    env.setattr(paths.urllib.request, "urlopen", fail)
    with pytest.raises(DataError, match=r"could not download data set 'gowalla'.*train.txt"):
        load_dataset("gowalla")
    assert list((tmp_path / "cache" / "datasets").iterdir()) == []  # no half-written folder


def test_download_unzips_into_place(env, tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t881250949\n")
        zf.writestr("ml-100k/u.item", "1|Toy Story (1995)|x||u" + "|0" * 18 + "|1\n")

    def serve(url, timeout):
        assert url == "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
        return io.BytesIO(archive.getvalue())

    env.setattr(paths.urllib.request, "urlopen", serve)
    data = load_dataset("ml-100k")
    assert len(data) == 1 and data.item_text(0)["genres"] == "Western"
    assert sorted(p.name for p in (tmp_path / "cache" / "datasets").iterdir()) == ["ml-100k"]
