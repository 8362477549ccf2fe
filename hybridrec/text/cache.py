"""A disk cache of text embeddings, so that a text is encoded once per model.

Layout: one safetensors file per model identity in the cache folder (by default
``hybridrec.data.paths.cache_dir() / "embeddings"``), named
``<readable model name>-<sha256 of the identity, 16 hex>.safetensors``. It holds

* ``keys``: ``uint8 [n, 32]``, the sha256 of each text (UTF-8);
* ``embeddings``: ``float32 [n, d]``, row ``r`` the embedding of the text hashed in ``keys[r]``;
* header metadata ``{"hybridrec": JSON}`` with the format version, the model identity,
  ``d`` and ``n``.

Texts are looked up by hash, so the cache serves any list of texts: reordered, grown by new
items, or shared between data sets. Writes go to a temporary file in the same folder, then
``os.replace`` it into place, so readers never see half a file. A file that cannot be read,
or whose metadata or shapes disagree, is reported with ``logging.warning`` naming it and
rebuilt on the next write. Two processes adding at once may lose one's additions (never
corrupt the file); the lost texts are encoded again next time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import torch

from ..io import save_tensors

log = logging.getLogger("hybridrec.text")

FORMAT = 1


def default_cache_folder() -> Path:
    """``hybridrec.data.paths.cache_dir() / "embeddings"`` (``$HYBRIDREC_CACHE`` aware)."""
    from ..data.paths import cache_dir

    return cache_dir() / "embeddings"


def text_key(text: str) -> bytes:
    """sha256 digest (32 bytes) of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Embeddings of texts under one model identity, stored in one safetensors file.

    Args:
        model_id: the model's identity; different identities never share entries.
        folder: the cache folder (created on first write); default
            :func:`default_cache_folder`.
    """

    def __init__(self, model_id: str, folder: str | os.PathLike | None = None):
        self.model_id = str(model_id)
        self.folder = Path(folder).expanduser() if folder is not None else default_cache_folder()
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.model_id.split("|")[0]).name)[-60:] or "model"
        digest = hashlib.sha256(self.model_id.encode("utf-8")).hexdigest()[:16]
        self.path = self.folder / f"{slug}-{digest}.safetensors"

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    # -- reading -----------------------------------------------------------------------
    def _read(self) -> tuple[np.ndarray, torch.Tensor] | None:
        """(keys ``uint8 [n, 32]``, embeddings ``[n, d]``), or None when absent or bad."""
        if not self.path.is_file():
            return None
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = json.loads((f.metadata() or {}).get("hybridrec", "null")) or {}
                keys, emb = f.get_tensor("keys"), f.get_tensor("embeddings")
        except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as e:
            return self._bad(f"unreadable ({type(e).__name__}: {e})")
        if meta.get("format") != FORMAT or meta.get("model") != self.model_id:
            return self._bad(f"it was written for model {meta.get('model')!r}, format "
                             f"{meta.get('format')!r}, not {self.model_id!r}, format {FORMAT}")
        n = meta.get("count")
        if (keys.dtype != torch.uint8 or keys.ndim != 2 or keys.shape[1] != 32
                or emb.ndim != 2 or emb.shape[0] != keys.shape[0] or n != keys.shape[0]
                or meta.get("dim") != emb.shape[1] or not torch.isfinite(emb).all()):
            return self._bad(f"inconsistent contents (keys {tuple(keys.shape)}, embeddings "
                             f"{tuple(emb.shape)}, metadata {meta})")
        return keys.numpy(), emb.float()

    def _bad(self, why: str) -> None:
        log.warning("embedding cache file %s is corrupt or mismatched: %s; it will be rebuilt",
                    self.path, why)
        return None

    def lookup(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Which ``texts`` are cached, and their embeddings.

        Returns:
            ``(found bool [n], embeddings float32 [n, d])``; rows of texts not found are
            zero, and the embeddings are None when nothing is cached.
        """
        found = torch.zeros(len(texts), dtype=torch.bool)
        stored = self._read()
        if stored is None or len(stored[0]) == 0:
            return found, None
        keys, emb = stored
        index = {k.tobytes(): r for r, k in enumerate(keys)}
        rows = torch.as_tensor([index.get(text_key(t), -1) for t in texts], dtype=torch.long)
        found = rows >= 0
        out = torch.zeros(len(texts), emb.shape[1], dtype=torch.float32)
        out[found] = emb[rows[found]]
        return found, out

    # -- writing -----------------------------------------------------------------------
    def add(self, texts: list[str], embeddings: torch.Tensor) -> None:
        """Store ``embeddings[r]`` for ``texts[r]``, keeping what the file already holds.

        Raises:
            ValueError: ``texts`` and ``embeddings`` differ in length, or ``embeddings``
                is not 2-D.
        """
        emb = torch.as_tensor(embeddings).detach().float().cpu()
        if emb.ndim != 2 or emb.shape[0] != len(texts):
            raise ValueError(f"need one embedding row per text: {len(texts)} texts, "
                             f"embeddings of shape {tuple(emb.shape)}")
        if not texts:
            return
        new_keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype=np.uint8).reshape(-1, 32)
        stored = self._read()
        if stored is not None and stored[1].shape[1] != emb.shape[1]:
            self._bad(f"it holds {stored[1].shape[1]}-d embeddings, the model now gives "
                      f"{emb.shape[1]}-d")
            stored = None
        if stored is not None:
            keys, old = stored
            known = {k.tobytes() for k in keys}
            fresh = np.array([k.tobytes() not in known for k in new_keys], dtype=bool)
            new_keys, emb = np.concatenate([keys, new_keys[fresh]]), torch.cat([old, emb[fresh]])
        _, first = np.unique(new_keys, axis=0, return_index=True)  # a text given twice
        first.sort()
        self._write(new_keys[first], emb[torch.as_tensor(first)])

    def _write(self, keys: np.ndarray, emb: torch.Tensor) -> None:
        meta = {"format": FORMAT, "model": self.model_id, "dim": int(emb.shape[1]), "count": len(keys)}
        save_tensors(self.path, {"keys": torch.from_numpy(np.ascontiguousarray(keys)), "embeddings": emb},
                     metadata={"hybridrec": json.dumps(meta)})

    def clear(self) -> None:
        """Delete this model's cache file."""
        self.path.unlink(missing_ok=True)
