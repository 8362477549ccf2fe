"""Stand-ins for sentence-transformer models, so text tests run in milliseconds."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import torch


def bag_of_words(texts: list[str], dim: int = 64) -> torch.Tensor:
    """Hashed word counts, ``float32 [n, dim]``: texts sharing words get similar vectors."""
    out = torch.zeros(len(texts), dim)
    for r, t in enumerate(texts):
        for w in re.findall(r"[a-z]+", t.lower()):
            out[r, int(hashlib.md5(w.encode()).hexdigest(), 16) % dim] += 1.0
    return out


class FakeSentenceModel:
    """Looks like a SentenceTransformer to :class:`~hybridrec.text.TextEncoder`; counts calls."""

    model_id = "fake-bow-64"

    def __init__(self, dim: int = 64):
        self.dim, self.calls, self.texts_seen = dim, 0, 0

    def encode(self, texts, batch_size=32, convert_to_tensor=False, normalize_embeddings=False,
               show_progress_bar=False):
        self.calls += 1
        self.texts_seen += len(texts)
        return bag_of_words(list(texts), self.dim)

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim


class FakeEncoder:
    """Looks like a :class:`~hybridrec.text.TextEncoder` to the models: ``encode(texts, ids=None)``."""

    def __init__(self, dim: int = 64):
        self.dim, self.calls = dim, 0

    def encode(self, texts, ids=None):
        self.calls += 1
        return torch.nn.functional.normalize(bag_of_words(list(texts), self.dim) + 1e-6, dim=1)


def block_item_embeddings(n_items: int, dim: int = 6, seed: int = 0) -> torch.Tensor:
    """Content of the toy block data: items of the first half near one direction, the rest another."""
    rng = np.random.default_rng(seed)
    e = 0.3 * rng.standard_normal((n_items, dim)).astype(np.float32)
    e[: n_items // 2, 0] += 1.0
    e[n_items // 2:, 1] += 1.0
    return torch.as_tensor(e)
