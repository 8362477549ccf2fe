"""LLMItemEncoder: mean-pooled hidden states of a causal LM, batching, truncation, the cache,
empty texts, and its selection by ``text_model="llm..."`` in the content model and the hybrid."""

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hybridrec.config import TrainConfig, parse_override
from hybridrec.data import generate_synthetic, make_split
from hybridrec.llm.loading import DEFAULT_LLM, load_llm
from hybridrec.models import ContentRecommender, HybridRecommender, build_model, load_model
from hybridrec.text import LLMItemEncoder, TextEncoder, make_encoder, parse_text_model
from llm_fakes import save_tiny_llm

pytest.importorskip("transformers")

LONG = "Toy Story (1995) Heat (1995) Jumanji (1995) Casino (1995) Sabrina (1995) Balto (1995)"
TEXTS = ["Heat (1995)", LONG, "Babe", "GoldenEye (1995) Nixon (1995)", "Toy Story (1995)"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="module")
def llm(folder):
    return load_llm(folder)


def make(folder, tmp_path, **kw):
    return LLMItemEncoder(folder, cache_dir=tmp_path, progress=False, **kw)


def hand_mean(llm, text, layer=1, max_tokens=None):
    """The docstring's formula, one text at a time through the full causal LM (layer 1: the
    tiny model's middle, the encoder's default)."""
    model, tok = llm
    ids = tok(text, return_tensors="pt", truncation=max_tokens is not None, max_length=max_tokens)
    with torch.no_grad():
        h = model(**ids, output_hidden_states=True).hidden_states[layer][0]
    return h.float().mean(0)


@pytest.mark.parametrize("layer", [-1, 1, 0, "middle"])
def test_mean_pooling_equals_a_hand_computation(folder, llm, tmp_path, layer):
    enc = make(folder, tmp_path, normalize=False, layer=layer)
    out = enc.encode(TEXTS)
    assert out.dtype == torch.float32 and out.shape == (len(TEXTS), 32) == (len(TEXTS), enc.dim)
    index = 1 if layer == "middle" else layer  # the tiny model has 2 layers: the middle is 2 // 2
    assert enc.layer_index == index
    want = torch.stack([hand_mean(llm, t, index) for t in TEXTS])
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-4)
    unit = make(folder, tmp_path, layer=layer, cache=False).encode(TEXTS)
    torch.testing.assert_close(unit, F.normalize(want, dim=1), atol=1e-5, rtol=1e-4)


def test_padding_does_not_change_an_embedding(folder, llm, tmp_path):
    lengths = {len(llm[1](t)["input_ids"]) for t in TEXTS}
    assert len(lengths) >= 3  # the batch really is padded
    alone = make(folder, tmp_path, batch_size=1, cache=False).encode(TEXTS)
    together = make(folder, tmp_path, batch_size=len(TEXTS), cache=False).encode(TEXTS)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
    assert (alone @ alone.T - torch.eye(len(TEXTS))).abs().max() > 1e-3  # distinct texts, distinct vectors


def test_texts_are_truncated_to_max_tokens(folder, llm, tmp_path):
    a, b = "Toy Story (1995) Heat (1995)", "Toy Story (1995) Clueless (1995) Babe"
    short = make(folder, tmp_path, max_tokens=4, normalize=False).encode([a, b])
    torch.testing.assert_close(short[0], short[1])  # a causal LM's first 4 states see only the first 4 tokens
    torch.testing.assert_close(short[0], hand_mean(llm, a, max_tokens=4), atol=1e-5, rtol=1e-4)
    full = make(folder, tmp_path, normalize=False).encode([a, b])
    assert not torch.allclose(full[0], full[1])
    assert torch.isfinite(make(folder, tmp_path, max_tokens=8).encode(["word " * 3000])).all()


def test_cache_hit_runs_the_model_zero_times_and_settings_do_not_share(folder, tmp_path):
    first = make(folder, tmp_path)
    a = first.encode(TEXTS)
    assert first.stats["encoded"] == len(TEXTS)
    again = make(folder, tmp_path)  # a new process, in effect
    b = again.encode(list(reversed(TEXTS)))
    assert again.stats == {"texts": len(TEXTS), "empty": 0, "cached": len(TEXTS), "encoded": 0}
    assert again._model is None  # never even loaded
    assert torch.equal(b, a.flip(0))
    for other in ({"layer": 1}, {"max_tokens": 4}, {"dtype": "bfloat16"}):
        enc = make(folder, tmp_path, **other)
        enc.encode(TEXTS)
        assert enc.stats["encoded"] == len(TEXTS) and enc.cache.path != first.cache.path, other
    assert len(list(tmp_path.glob("*.safetensors"))) == 4
    sentence = TextEncoder(folder, cache_dir=tmp_path, progress=False)
    assert sentence.cache.path != first.cache.path  # the same folder as a sentence model: another entry


def test_empty_texts_as_for_the_sentence_encoder(folder, tmp_path, caplog):
    with pytest.raises(ValueError, match=r"2 of 3 texts are empty: 'i2', 'i3'.*on_empty='zero'"):
        make(folder, tmp_path).encode(["Heat", "", "  "], ids=["i1", "i2", "i3"])
    enc = make(folder, tmp_path, on_empty="zero")
    with caplog.at_level(logging.WARNING, logger="hybridrec.text"):
        out = enc.encode(["Heat", "", "Babe"], ids=["a", "b", "c"])
    assert out[1].abs().sum() == 0 and torch.allclose(out[[0, 2]].norm(dim=1), torch.ones(2))
    assert "1 of 3 texts are empty" in caplog.text and "'b'" in caplog.text and enc.stats["empty"] == 1
    assert enc.encode(["", " "]).shape == (2, 32)  # no text at all: the model says d


def test_bad_settings_say_what_to_do(folder, tmp_path):
    with pytest.raises(ValueError, match="layer=5, but .* has 2 layers"):
        make(folder, tmp_path, layer=5).encode(["Heat"])
    with pytest.raises(ValueError, match="max_tokens"):
        make(folder, tmp_path, max_tokens=0)
    for bad in ("llm:", "st:all-MiniLM-L6-v2", {"llm": "x"}):
        with pytest.raises(ValueError, match=r"'llm:<hub name or folder>'"):
            build_model("content", {"text_model": bad})


def test_text_model_selects_the_encoder(folder, tmp_path):
    assert parse_text_model(None) == ("sentence", None) and parse_text_model("llm") == ("llm", None)
    assert parse_text_model("llm:HuggingFaceTB/SmolLM2-360M-Instruct") == ("llm", "HuggingFaceTB/SmolLM2-360M-Instruct")
    assert parse_override("model.params.text_model=llm:/models/x") == (["model", "params", "text_model"], "llm:/models/x")
    default = build_model("content", {"text_model": "llm"}).text_encoder(cache_dir=tmp_path)
    assert isinstance(default, LLMItemEncoder) and default.name == DEFAULT_LLM and default._model is None
    tiny = make_encoder(f"llm:{folder}", layer=1, cache_dir=tmp_path)
    assert isinstance(tiny, LLMItemEncoder) and tiny.name == folder and tiny.layer == 1
    assert isinstance(build_model("content", {}).text_encoder(), TextEncoder)


@pytest.fixture(scope="module")
def split():
    data = generate_synthetic(150, 200, seed=0)
    return make_split(data, "cold_item", cold_fraction=0.2, seed=0)


def test_content_model_scores_cold_items_and_keeps_the_choice(folder, split, tmp_path):
    m = ContentRecommender(text_model=f"llm:{folder}").fit(split.train)
    assert m.content_embeddings.shape == (split.n_items, 32)
    cold = torch.as_tensor(split.cold_items)
    s = m.score_users(torch.arange(10))
    assert torch.isfinite(s).all() and s[:, cold].std() > 0
    again = load_model(m.save(tmp_path / "content"))
    assert again.text_model == f"llm:{folder}" and isinstance(again.text_encoder(), LLMItemEncoder)
    assert torch.equal(again.score_users(torch.arange(10)), s)
    row = int(cold[0])  # a new item with a cold item's text scores as that item: the same encoder
    new = split.train.item_table.iloc[[row]].assign(item_id="new-1").to_dict("records")
    got = again.score_new_items(new, split.train.user_vocab.ids[:10])
    torch.testing.assert_close(torch.as_tensor(got[:, 0]), s[:, row], atol=1e-5, rtol=1e-4)


def test_hybrid_fits_with_llm_features(folder, split):
    fast = TrainConfig(epochs=2, batch_size=256, lr=0.05, l2=1e-4, progress=False)
    m = HybridRecommender(dim=8, train=fast, text_model=f"llm:{folder}", threshold=4, graph_weight=1,
                          projection_weight=0, calibrate=False).fit(split.train)
    assert m.content_embeddings.shape == (split.n_items, 32) and m.settings()["text_model"] == f"llm:{folder}"
    s = m.score_users(torch.arange(10))[:, torch.as_tensor(split.cold_items)]
    assert torch.isfinite(s).all() and s.std() > 0
    assert np.isfinite(m.recommend(split.train.user_vocab.ids[0], k=5)[1]).all()

