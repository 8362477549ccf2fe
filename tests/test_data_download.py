"""Pinned, atomic, resumable downloads, against a local HTTP server (no network)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import logging
import re
import threading
import zipfile

import pytest

from hybridrec.data import DataError, load_dataset
from hybridrec.data import loaders, paths

TRAIN = b"".join(b"%d %d %d\n" % (u, u % 5, 7 + (u * 3) % 11) for u in range(2000))
TEST = b"0 5\n1 6\n"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def git_blob(data: bytes) -> str:
    return "git-blob:" + hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Server(http.server.ThreadingHTTPServer):
    """Serves ``files`` (path -> bytes) with Range support; ``cut`` bytes into the next
    response it drops the connection, as a network failure would."""

    def __init__(self, files: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files, self.cut, self.ranges, self.requests = files, None, True, []

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.ranges:
            start = int(match.group(1))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut is not None:
            body, server.cut = body[: server.cut], None
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = Server({"repo/train.txt": TRAIN, "repo/test.txt": TEST})
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.delenv("HYBRIDREC_DATA", raising=False)
    monkeypatch.setenv("HYBRIDREC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "datasets"


def source(server, train_pin=None, test_pin=None) -> paths.Source:
    return paths.Source((server.url("repo/train.txt"), server.url("repo/test.txt")),
                        checksums=(("train.txt", train_pin or git_blob(TRAIN)),
                                   ("test.txt", test_pin or sha256(TEST))))


def test_pinned_download_lands_whole_and_loads(server, cache, monkeypatch):
    spec = dataclasses.replace(loaders.DATASETS["gowalla"], source=source(server))
    monkeypatch.setitem(loaders.DATASETS, "gowalla", spec)
    data = load_dataset("gowalla")
    assert len(data) == 4002 and data.meta["fold"].sum() == 2
    assert (cache / "gowalla" / "train.txt").read_bytes() == TRAIN
    assert sorted(p.name for p in cache.iterdir()) == ["gowalla"]  # no partial folder left
    assert [r for _, r in server.requests] == [None, None]  # fresh downloads, no Range


def test_checksum_mismatch_deletes_the_download_and_names_url_and_hashes(server, cache):
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DataError) as err:
        paths.download_dataset("gowalla", cache / "gowalla", source(server, test_pin=wrong))
    message = str(err.value)
    assert server.url("repo/test.txt") in message and "0" * 64 in message
    assert sha256(TEST).split(":")[1] in message
    assert list(cache.iterdir()) == []  # nothing left behind, not even train.txt
    wrong_blob = "git-blob:" + "1" * 40
    with pytest.raises(DataError, match=r"expected git-blob 1{40}, got " + git_blob(TRAIN)[9:]):
        paths.download_dataset("gowalla", cache / "gowalla", source(server, train_pin=wrong_blob))
    assert list(cache.iterdir()) == []


def test_interrupted_download_resumes_with_a_range_request(server, cache):
    server.cut = 5000  # the connection drops 5000 bytes into train.txt
    with pytest.raises(DataError, match="partial download is kept: run again to resume"):
        paths.download_dataset("gowalla", cache / "gowalla", source(server))
    part = cache / ".gowalla.partial" / "train.txt.part"
    assert part.stat().st_size == 5000 and not (cache / "gowalla").exists()
    paths.download_dataset("gowalla", cache / "gowalla", source(server))
    assert (cache / "gowalla" / "train.txt").read_bytes() == TRAIN
    assert server.requests[-2] == ("/repo/train.txt", "bytes=5000-")  # only the rest
    assert sorted(p.name for p in cache.iterdir()) == ["gowalla"]


def test_server_without_ranges_sends_the_whole_file_again(server, cache):
    server.cut, server.ranges = 3000, False
    with pytest.raises(DataError):
        paths.download_dataset("gowalla", cache / "gowalla", source(server))
    paths.download_dataset("gowalla", cache / "gowalla", source(server))
    assert (cache / "gowalla" / "train.txt").read_bytes() == TRAIN


def test_files_fetched_before_an_interruption_are_not_fetched_again(server, cache):
    server.files["repo/test.txt"] = b""  # missing for now: test.txt gets a 404 below
    del server.files["repo/test.txt"]
    with pytest.raises(DataError, match="404"):
        paths.download_dataset("gowalla", cache / "gowalla", source(server))
    assert (cache / ".gowalla.partial" / "train.txt").read_bytes() == TRAIN  # checked, kept
    server.files["repo/test.txt"] = TEST
    server.requests.clear()
    paths.download_dataset("gowalla", cache / "gowalla", source(server))
    assert [p for p, _ in server.requests] == ["/repo/test.txt"]


def ml100k_zip(u_data: bytes) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-100k/u.data", u_data)
        zf.writestr("ml-100k/u.item", "1|Toy Story (1995)|x||u" + "|0" * 18 + "|1\n")
    return archive.getvalue()


def test_zip_contents_are_compared_with_their_pins(server, cache, caplog):
    u_data = b"1\t1\t5\t881250949\n"
    server.files["ml-100k.zip"] = ml100k_zip(u_data)
    src = paths.Source((server.url("ml-100k.zip"),), is_zip=True, folder="ml-100k",
                       checksums=(("u.data", sha256(u_data)), ("u.item", sha256(b"other"))))
    with caplog.at_level(logging.WARNING, logger="hybridrec.data"):
        paths.download_dataset("ml-100k", cache / "ml-100k", src)
    assert "ml-100k/u.item: checksum differs from the pinned original" in caplog.text
    assert "u.data" not in caplog.text
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]
    server.files["ml-100k.zip"] = b"not a zip"
    with pytest.raises(DataError, match="could not download data set 'ml-100k'"):
        paths.download_dataset("ml-100k", cache / "other", src)
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]


def test_local_copy_mismatch_is_a_warning_and_digests_are_cached(tmp_path, cache, caplog,
                                                                monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "train.txt").write_bytes(TRAIN)
    (folder / "test.txt").write_bytes(b"0 1\n")  # the user's own version
    src = paths.Source(("http://unused/train.txt", "http://unused/test.txt"),
                       checksums=(("train.txt", git_blob(TRAIN)), ("test.txt", sha256(TEST))))
    calls = []
    digest = paths.file_digest
    monkeypatch.setattr(paths, "file_digest", lambda p, k="sha256": calls.append(p) or digest(p, k))
    with caplog.at_level(logging.WARNING, logger="hybridrec.data"):
        assert paths.resolve_dataset_dir("gowalla", folder, source=src) == folder
    assert f"{folder / 'test.txt'}: checksum differs from the pinned original" in caplog.text
    assert "train.txt" not in caplog.text and len(calls) == 2
    assert (folder / paths.CHECKSUM_FILE).is_file()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hybridrec.data"):
        paths.resolve_dataset_dir("gowalla", folder, source=src)
    assert len(calls) == 2 and "test.txt: checksum differs" in caplog.text  # not rehashed
    (folder / "test.txt").write_bytes(TEST)  # fixed: hashed again, no warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hybridrec.data"):
        paths.resolve_dataset_dir("gowalla", folder, source=src)
    assert len(calls) == 3 and caplog.text == ""


def test_read_only_folder_keeps_its_digest_cache_under_the_cache_folder(tmp_path, cache):
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "test.txt").write_bytes(TEST)
    folder.chmod(0o555)
    try:
        paths.check_local_copy(folder, paths.Source((), checksums=(("test.txt", sha256(TEST)),)))
        assert not (folder / paths.CHECKSUM_FILE).exists()
        assert len(list((cache.parent / "checksums").glob("*.json"))) == 1
    finally:
        folder.chmod(0o755)


def test_registry_sources_are_pinned():
    for name, spec in loaders.DATASETS.items():
        if spec.source is None:
            continue
        for url in spec.source.urls:
            assert "/master/" not in url and "/main/" not in url, url
            if "githubusercontent" in url:
                assert re.search(r"/[0-9a-f]{40}/", url), url  # a commit, not a branch
                assert spec.source.pin(url.rsplit("/", 1)[1]) is not None, url
        for filename, pin in spec.source.checksums:
            kind, _, hexdigest = pin.partition(":")
            assert kind in paths.CHECKSUM_KINDS
            assert len(hexdigest) == (64 if kind == "sha256" else 40), filename


@pytest.mark.parametrize("name", ["ml-100k", "ml-latest-small", "gowalla"])
def test_pins_match_the_shared_copies(dataset_dir, name, cache):
    """The pinned checksums are those of the original files. The shared gowalla train.txt
    has its items sorted within each line, so only its test.txt is byte-identical."""
    folder = dataset_dir(name)
    for filename, pin in loaders.PINS[name]:
        kind, _, hexdigest = pin.partition(":")
        same = paths.file_digest(folder / filename, kind) == hexdigest
        assert same == (name != "gowalla" or filename == "test.txt"), filename
