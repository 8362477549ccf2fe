"""Shared fixtures: where the real data sets are, and the ``slow`` marker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: end-to-end or real-data tests that take more than a few seconds"
    )
    # caches (text embeddings, downloads) go to a fresh folder, never the user's own
    import tempfile

    os.environ["HYBRIDREC_CACHE"] = config._hybridrec_cache = tempfile.mkdtemp(prefix="hybridrec-test-cache-")


def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(getattr(config, "_hybridrec_cache", ""), ignore_errors=True)


def _datasets_root() -> Path:
    value = os.environ.get("HYBRIDREC_DATA", "").strip()
    return Path(value).expanduser() if value else REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def datasets_root() -> Path:
    """The folder holding real data sets: ``$HYBRIDREC_DATA``, else ``../shared/datasets``."""
    root = _datasets_root()
    if not root.is_dir():
        pytest.skip(f"data set folder {root} not found: set HYBRIDREC_DATA")
    return root


@pytest.fixture(scope="session")
def dataset_dir(datasets_root):
    """``dataset_dir(name)``: the folder of one real data set, or skip the test."""

    def get(name: str) -> Path:
        folder = datasets_root / name
        if not folder.is_dir():
            pytest.skip(f"data set {name!r} not found in {datasets_root}: set HYBRIDREC_DATA")
        return folder

    return get
