"""The embedding cache: reuse, growth, atomic files, corrupt or mismatched files rebuilt."""

import logging

import pytest
import torch

from hybridrec.text import EmbeddingCache, TextEncoder, default_cache_folder
from text_fakes import FakeSentenceModel

TEXTS = ["a tale of dragons", "a cooking show", "jazz in smoky clubs"]


def encoder(tmp_path, model=None, **kw):
    return TextEncoder(model or FakeSentenceModel(), cache_dir=tmp_path, progress=False, **kw)


def test_second_encode_runs_the_model_zero_times(tmp_path):
    first = encoder(tmp_path)
    a = first.encode(TEXTS)
    assert first.model.calls == 1 and first.stats["encoded"] == 3
    again = encoder(tmp_path)  # a new process, in effect: nothing in memory
    b = again.encode(list(reversed(TEXTS)))
    assert again.model.calls == 0 and again.stats["cached"] == 3
    assert torch.equal(b, a.flip(0))


def test_only_new_texts_are_encoded_and_the_file_grows(tmp_path):
    encoder(tmp_path).encode(TEXTS[:2])
    enc = encoder(tmp_path)
    out = enc.encode(TEXTS + [TEXTS[0]])  # one new text, one repeated
    assert enc.model.texts_seen == 1 and out.shape == (4, 64)
    assert torch.equal(out[0], out[3])
    found, _ = EmbeddingCache("fake-bow-64", tmp_path).lookup(TEXTS)
    assert found.all()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # no temp files left


def test_models_do_not_share_entries(tmp_path):
    encoder(tmp_path).encode(TEXTS)
    other = encoder(tmp_path, model_id="another-model")
    other.encode(TEXTS)
    assert other.model.calls == 1
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


@pytest.mark.parametrize("damage", [b"not a safetensors file", b""])
def test_corrupt_file_is_reported_and_rebuilt(tmp_path, caplog, damage):
    enc = encoder(tmp_path)
    want = enc.encode(TEXTS)
    enc.cache.path.write_bytes(damage)
    again = encoder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hybridrec.text"):
        got = again.encode(TEXTS)
    assert again.model.calls == 1 and torch.equal(got, want)
    assert str(again.cache.path) in caplog.text and "rebuilt" in caplog.text
    third = encoder(tmp_path)
    third.encode(TEXTS)
    assert third.model.calls == 0  # the rebuilt file is good


def test_mismatched_file_is_reported_and_rebuilt(tmp_path, caplog):
    enc = encoder(tmp_path)
    enc.encode(TEXTS)
    foreign = EmbeddingCache("someone-else", tmp_path)
    foreign.add(TEXTS, torch.ones(3, 5))
    foreign.path.replace(enc.cache.path)  # a file written for another model, under our name
    again = encoder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hybridrec.text"):
        out = again.encode(TEXTS)
    assert again.model.calls == 1 and out.shape == (3, 64)
    assert "someone-else" in caplog.text and str(enc.cache.path) in caplog.text


def test_lookup_and_add_checks(tmp_path):
    cache = EmbeddingCache("m", tmp_path)
    found, emb = cache.lookup(TEXTS)
    assert not found.any() and emb is None
    with pytest.raises(ValueError, match="one embedding row per text"):
        cache.add(TEXTS, torch.zeros(2, 4))
    cache.add(TEXTS[:1], torch.arange(4.0)[None])
    found, emb = cache.lookup(TEXTS)
    assert found.tolist() == [True, False, False] and emb[0].tolist() == [0, 1, 2, 3]


def test_default_folder_follows_hybridrec_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HYBRIDREC_CACHE", str(tmp_path))
    assert default_cache_folder() == tmp_path / "embeddings"
    assert EmbeddingCache("m").path.parent == tmp_path / "embeddings"
