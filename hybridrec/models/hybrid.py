"""The hybrid recommender: graph embeddings blended per item with projected text embeddings.

Content bootstraps an item, the graph refines it as interactions accumulate (the cold-start
recipe of PinSage-style hybrids): an item's final embedding moves from its projected text
embedding to its graph embedding as its number of training interactions grows.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..data import Interactions, Vocabulary
from ..graph import BipartiteGraph
from ..text.item_text import DEFAULT_TEMPLATE
from ..train import train_bpr
from .content_base import ContentAware
from .embedding import EmbeddingRecommender
from .lightgcn import LightGCNModule
from .mf import MFModule

BACKBONES = ("lightgcn", "mf")
INITS = ("svd", "random", "normal")


def parse_threshold(value) -> float:
    """A blend threshold :math:`\tau`: a number >= 0, or ``inf`` / ``.inf`` (content only).

    Raises:
        ValueError: anything else, saying what is allowed.
    """
    if isinstance(value, str) and value.strip().lower() in ("inf", ".inf", "infinity"):
        return math.inf
    try:
        v = None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        v = None
    if v is None or not v >= 0:
        raise ValueError(f"threshold {value!r} is not a number >= 0: 0 for graph only, .inf (YAML) or 'inf' "
                         "for content only, e.g. 100")
    return v


def blend_weights(counts, threshold: float) -> torch.Tensor:
    r"""Per-item weight of the graph embedding, :math:`a_i = \min(n_i / \tau, 1)`.

    ``threshold`` :math:`\tau`: ``0`` gives :math:`a_i = 1` for every item with an
    interaction (pure graph; the limit :math:`\tau \to 0^+`), ``inf`` gives
    :math:`a_i = 0` everywhere (pure content). An item with :math:`n_i = 0` always gets
    :math:`a_i = 0`: it has no graph embedding to speak of.
    """
    n = torch.as_tensor(np.asarray(counts), dtype=torch.float32)
    if threshold == 0:
        return (n > 0).float()
    return torch.clamp(n / float(threshold), max=1.0)  # n / inf = 0


class HybridModule(nn.Module):
    r"""A graph backbone whose item embeddings are blended with projected content.

    .. math::
        p_i = W c_i, \qquad (e_u, g_i) = \mathrm{backbone}(), \qquad
        e_i = (1 - a_i)\, p_i + a_i\, g_i

    :math:`c_i` are fixed content embeddings, :math:`W` a learned linear projection (no
    bias) into the backbone's space, :math:`g_i` the backbone's final item embedding
    (after LightGCN propagation: the blend is on the final embedding) and :math:`a_i` the
    fixed blend weights of :func:`blend_weights`. Users keep the backbone's embeddings.
    ``initial`` gives the layer-0 embeddings for the L2 penalty: users' id embeddings, and
    for items :math:`(1 - a_i) W c_i + a_i e^{(0)}_i`, the part of each the item uses.

    Initialisation (``init``): ``"svd"`` sets :math:`W` to the top right singular vectors of
    the content matrix (its best rank-``dim`` linear map, truncated SVD without
    centring), ``"random"`` to a fixed Gaussian random projection; both are scaled so that
    the entries of :math:`W c` have standard deviation ``init_std``, and the item id
    embeddings start at :math:`e^{(0)}_i = W c_i`. ``"normal"`` leaves the backbone's
    random item embeddings and PyTorch's default :math:`W`.

    Args:
        backbone: an ``nn.Module`` with ``user``/``item`` embedding tables, ``forward() ->
            (user_emb, item_emb)`` and ``initial(u, i, j)``
            (:class:`~hybridrec.models.lightgcn.LightGCNModule`, :class:`~hybridrec.models.mf.MFModule`).
        content: content embeddings ``[n_items, d_c]`` (kept fixed).
        alpha: blend weights ``[n_items]`` in ``[0, 1]`` (kept fixed).
        init: ``"svd"`` (default), ``"random"`` or ``"normal"``.
        init_std: target standard deviation of the initial projected content.
    """

    def __init__(self, backbone: nn.Module, content: torch.Tensor, alpha: torch.Tensor,
                 init: str = "svd", init_std: float = 0.1):
        super().__init__()
        n_items, dim = backbone.item.weight.shape
        if content.shape[0] != n_items or alpha.shape != (n_items,):
            raise ValueError(f"backbone has {n_items} items, content {tuple(content.shape)}, alpha {tuple(alpha.shape)}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.backbone = backbone
        self.register_buffer("content", content.float())
        self.register_buffer("alpha", alpha.float())
        self.proj = nn.Linear(content.shape[1], dim, bias=False, device=backbone.item.weight.device)
        if init != "normal":
            with torch.no_grad():
                w = _initial_projection(content, dim, init, init_std)  # on the CPU
                self.proj.weight.copy_(w)
                backbone.item.weight.copy_(content.detach().float().cpu() @ w.T)

    def project(self, content: torch.Tensor) -> torch.Tensor:
        """:math:`W c` for content embeddings ``[m, d_c]``."""
        return self.proj(content)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, graph_items = self.backbone()
        a = self.alpha[:, None]
        return users, (1 - a) * self.proj(self.content) + a * graph_items

    def initial(self, users, pos, neg):
        eu, ep, en = self.backbone.initial(users, pos, neg)
        return eu, self._blend0(pos, ep), self._blend0(neg, en)

    def _blend0(self, idx, e0):
        a = self.alpha[idx, None]
        return (1 - a) * self.proj(self.content[idx]) + a * e0


def _initial_projection(content: torch.Tensor, dim: int, init: str, init_std: float) -> torch.Tensor:
    """``W`` ``[dim, d_c]`` (on the CPU) for ``init`` "svd" or "random", scaled to ``init_std``."""
    d_c = content.shape[1]
    gen = torch.Generator(device="cpu").manual_seed(0)
    w = torch.randn(dim, d_c, generator=gen) / math.sqrt(d_c)
    if init == "svd":
        k = min(dim, d_c, content.shape[0])
        _, _, vh = torch.linalg.svd(content.detach().cpu().double(), full_matrices=False)
        w[:k] = vh[:k].float()  # rows beyond the content's rank stay random
    out = content.detach().float().cpu() @ w.T
    std = float(out.std()) if out.numel() > 1 else 0.0
    scale = init_std / std if std > 1e-12 else 1.0  # all-zero content: nothing to scale
    return w * scale


def warm_part(data: Interactions | None, keep: np.ndarray, vocab: Vocabulary | None = None) -> Interactions | None:
    """``data`` restricted to the items where ``keep`` is true, with items renumbered
    ``0..keep.sum()-1`` (rows of other items are dropped)."""
    if data is None or keep.all():
        return data
    remap = np.full(len(keep), -1, dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    rows = remap[data.items] >= 0
    vocab = vocab or Vocabulary(data.item_vocab.ids[keep], kind="item")
    take = (lambda a: None if a is None else a[rows])
    return Interactions(data.users[rows], remap[data.items[rows]], data.user_vocab, vocab,
                        take(data.timestamps), take(data.ratings), None, data.name)


class HybridRecommender(ContentAware, EmbeddingRecommender):
    r"""LightGCN (or MF) with items bootstrapped by, and blended with, their text.

    Content embeddings :math:`c_i` (text encoder, or precomputed) enter twice:

    1. **initialisation**: the item id embeddings start at the projected content
       :math:`W c_i` (``init``, see :class:`HybridModule`);
    2. **blend**, on the final embedding, :math:`e_i = (1 - a_i) W c_i + a_i g_i` with
       :math:`a_i = \min(n_i / \tau, 1)`, :math:`n_i` the item's training interactions,
       :math:`\tau` = ``threshold`` and :math:`g_i` the propagated graph embedding.

    :math:`W`, the id embeddings and the user embeddings are trained jointly with BPR
    (:func:`~hybridrec.train.train_bpr`). Training sees only the items with at least one
    training interaction (so items with none are never sampled as negatives, exactly
    like items that arrive later); an item with :math:`n_i = 0`, in the catalogue or new,
    is scored from :math:`W c_i` alone, without retraining.

    ``threshold``: ``0`` = graph only for every item with an interaction, ``inf`` = content
    only (the users still come from the graph), default 100 (the lecture's blend). With
    ``0`` no training item uses :math:`W`, so it stays at its initialisation and cold items
    are scored through that.

    Args: see :class:`~hybridrec.models.embedding.EmbeddingRecommender` (``dim``,
        ``train``, ``seed``, ``device``, ``eval_batch_size``); plus
        backbone: ``"lightgcn"`` (default) or ``"mf"``.
        threshold: interactions at which an item is pure graph (default 100).
        n_layers, alphas: LightGCN propagation layers and layer weights.
        init_std: standard deviation of the initial embeddings.
        init: projection / item embedding initialisation, ``"svd"``, ``"random"``, ``"normal"``.
        text_model, text_template, on_empty, text_batch_size: item text settings, as for
            :class:`~hybridrec.models.content.ContentRecommender`.
    """

    name = "hybrid"

    def __init__(self, dim: int = 64, backbone: str = "lightgcn", threshold: float | str = 100.0,
                 n_layers: int = 3, alphas: list[float] | None = None, init_std: float = 0.1,
                 init: str = "svd", text_model: str | None = None, text_template: str = DEFAULT_TEMPLATE,
                 on_empty: str = "error", text_batch_size: int = 64, **kwargs):
        super().__init__(dim=dim, **kwargs)
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.threshold = parse_threshold(threshold)
        self.backbone, self.init = backbone, init
        self.n_layers, self.alphas, self.init_std = int(n_layers), alphas, float(init_std)
        self._init_text(text_model, text_template, on_empty, text_batch_size)
        self._proj_weight: torch.Tensor | None = None
        self._counts: torch.Tensor | None = None

    def settings(self):
        return {**super().settings(), **self._text_settings(), "backbone": self.backbone,
                "threshold": "inf" if math.isinf(self.threshold) else self.threshold,
                "n_layers": self.n_layers, "alphas": self.alphas, "init_std": self.init_std, "init": self.init}

    def fit(self, train: Interactions, valid: Interactions | None = None, *, item_embeddings=None,
            encoder=None) -> "HybridRecommender":
        """Embed the catalogue's text, then train on the items with interactions.

        Validation (``valid``, for early stopping) is restricted to the same items.

        Args:
            item_embeddings: precomputed content embeddings ``[n_items, d]`` (skips encoding).
            encoder: encoder object for the item strings; default :meth:`text_encoder`.
        """
        self._remember(train)
        self._content = self._content_for(train, item_embeddings, encoder).to(self.device)
        self._counts = torch.as_tensor(train.item_counts())
        warm = train.item_counts() > 0
        sub_train = warm_part(train, warm)
        sub_valid = warm_part(valid, warm, sub_train.item_vocab)
        self._warm = torch.as_tensor(np.flatnonzero(warm), device=self.device)
        torch.manual_seed(self.seed)
        self.module = self.build_module(sub_train).to(self.device)
        self.history = train_bpr(self.module, sub_train, sub_valid, self.train_config, seed=self.seed,
                                 device=self.device, eval_batch_size=self.eval_batch_size)
        self._cache_embeddings()
        return self

    def build_module(self, train: Interactions) -> nn.Module:
        """The module for ``train``, whose items are the catalogue's items with interactions."""
        if self.backbone == "lightgcn":
            graph = BipartiteGraph(train.to_csr(), device=self.device)
            backbone = LightGCNModule(graph, self.dim, self.n_layers, self.alphas, self.init_std)
        else:
            backbone = MFModule(train.n_users, train.n_items, self.dim, self.init_std)
        content = self._content[self._warm]
        alpha = blend_weights(self._counts[self._warm.cpu()].numpy(), self.threshold)
        return HybridModule(backbone, content, alpha.to(self.device), self.init, self.init_std)

    @torch.no_grad()
    def _cache_embeddings(self) -> None:
        self.module.eval()
        users, warm_items = self.module()
        self._proj_weight = self.module.proj.weight.detach().clone()
        items = self._item_vectors(self._content)  # a_i = 0 for items without interactions
        items[self._warm] = warm_items
        self._user_emb, self._item_emb = users.detach(), items

    # -- content-aware scoring ---------------------------------------------------------
    def _item_vectors(self, content: torch.Tensor) -> torch.Tensor:
        return content.to(self._proj_weight.device) @ self._proj_weight.T

    def _user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self._user_emb[users.to(self._user_emb.device)]

    @property
    def blend(self) -> torch.Tensor:
        """Blend weights :math:`a_i` of every catalogue item, ``[n_items]``."""
        self._check_fitted()
        return blend_weights(self._counts.numpy(), self.threshold)

    def to(self, device) -> "HybridRecommender":
        super().to(device)
        if self._content is not None:
            self._content, self._proj_weight = self._content.to(self.device), self._proj_weight.to(self.device)
        return self

    def _state(self):
        settings, tensors = super()._state()
        return settings, {**tensors, "item_content": self._content, "proj_weight": self._proj_weight,
                          "item_counts": self._counts}

    def _restore(self, settings, tensors):
        super()._restore(settings, tensors)
        self._content = tensors["item_content"].to(self.device)
        self._proj_weight = tensors["proj_weight"].to(self.device)
        self._counts = tensors["item_counts"]
