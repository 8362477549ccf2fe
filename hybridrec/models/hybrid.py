r"""The hybrid recommender: a graph model and a text model on one calibrated scale.

Content bootstraps an item, the graph refines it as interactions accumulate. The hybrid
keeps both parts whole and blends their *scores*, put on one scale:

* **graph part**: LightGCN trained with BPR (early stopping on validation) exactly as the
  LightGCN model would be; user and item embeddings :math:`e_u, g_i`.
* **text part**: the content model's score :math:`\cos(p_u, c_i)` of the user's text
  profile :math:`p_u` (mean text embedding of their history) against the item's text,
  mixed with the graph user's score of the item's *projected* text
  :math:`e_u^\top W c_i`, where :math:`W` is a ridge regression from text to the graph
  item embeddings fitted on every item with interactions.

Each score is standardised per user (its mean and standard deviation over the catalogue,
computed in closed form from the embeddings), giving :math:`\hat g_{ui}, \hat t_{ui},
\hat p_{ui}`. With the text form :math:`f_{ui} = (1 - w)\,\hat t_{ui} + w\,\hat p_{ui}`,

.. math::
    s_{ui} = \lambda_i \bigl(a\, \hat g_{ui} + (1 - a)\, \hat t_{ui}\bigr)
           + (1 - \lambda_i) \bigl(\gamma f_{ui} + b\bigr),
    \qquad \lambda_i = \min(n_i / \tau, 1)

:math:`n_i` is the item's number of training interactions, so an item with none is scored
by its calibrated text alone and a popular one by the graph (with weight :math:`1 - a` on
the user's text profile; the projected text only approximates the graph on such items).
The lecture's blend is the special case :math:`\tau = 100, a = 1`.
:math:`\tau = 0` and :math:`a = 1` give the graph part for every item with an
interaction, :math:`\tau = \infty` the text part; :math:`w = 0` makes the text part the
content model exactly.

**Chosen on validation.** :math:`w` and the ridge penalty are chosen on the validation
interactions of items with no training interactions (ranked among such items), :math:`a`
on those of warm items (ranked among warm items), the calibration :math:`(\gamma, b)` and
then :math:`\tau` on all validation interactions ranked over the whole catalogue, each by
the validation metric (Recall@20 by default) over a grid that starts at the pure part
(:math:`w = 0`: the content model; :math:`a = 1`: LightGCN; :math:`b` = :data:`COLD_LAST`:
cold items after warm ones, as a graph model ranks them; :math:`\tau = 0`). A grid point
counts only if it beats the pure part on both halves of the items (split at random), and
of those the first within two standard errors (:data:`SE_RULE`) of the best is chosen, so
noise on validation does not move the blend away from a part. A cold-item split with
``valid_cold_fraction > 0`` gives the validation the held-out items it needs; without
them the text-only settings keep their defaults (:data:`DEFAULT_BLEND`).

Because every term is a dot product of a per-user and a per-item vector, the whole score
is one: ``score_users`` is one matrix product, and new items are scored like catalogue items
with no interactions. :meth:`HybridRecommender.update` folds new interactions in without
retraining: LightGCN propagates over the grown graph, and :math:`\lambda_i` moves with the
new counts.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..data import Interactions, Vocabulary
from ..data.errors import DataError
from ..graph import BipartiteGraph
from ..text.item_text import DEFAULT_TEMPLATE
from ..train import train_bpr
from ..train.loop import parse_metric
from .base import item_sets_csr
from .content import weighted_row_means
from .content_base import ContentAware
from .embedding import EmbeddingRecommender
from .lightgcn import LightGCNModule

log = logging.getLogger("hybridrec.models")

INITS = ("normal", "svd", "random")

#: Grids searched on validation; each starts with the setting that means "one part only"
#: (ties keep the earlier value).
GRAPH_WEIGHTS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)
PROJECTION_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
RIDGE_L2 = (1.0, 0.1, 10.0)
SCALES = (1.0, 0.5, 0.75, 1.5, 2.0, 3.0)
OFFSETS = tuple(sorted((float(x) for x in np.round(np.arange(-4.0, 4.01, 0.25), 2)), key=lambda x: (abs(x), x)))
#: The offset that ranks every cold item after every warm one (a graph model's order).
COLD_LAST = -1e4
THRESHOLDS = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: How many standard errors (of the paired difference with the best) a grid point may trail
#: the best by and still be chosen in preference order: validation noise must beat this to
#: move the blend off a part (the classic rule uses one; the grids are searched, so the best
#: point's lead is biased upwards, and two guard against that).
SE_RULE = 2.0
#: Largest (validation users x items) block scored at once while choosing the blend.
CALIBRATION_CELLS = 2 ** 25


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
                         "for content only, e.g. 100, or 'auto' (chosen on validation)")
    return v


def _auto_or(value, parse, name: str):
    """``"auto"`` (chosen on validation) or ``parse(value)``."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return parse(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: {err}") from None


def _unit(value) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{value!r} is not a number in [0, 1], or 'auto'")
    return v


def blend_weights(counts, threshold: float) -> torch.Tensor:
    r"""Per-item weight of the graph side, :math:`\lambda_i = \min(n_i / \tau, 1)`.

    ``threshold`` :math:`\tau`: ``0`` gives :math:`\lambda_i = 1` for every item with an
    interaction (the limit :math:`\tau \to 0^+`), ``inf`` gives :math:`\lambda_i = 0`
    everywhere (text only). An item with :math:`n_i = 0` always gets :math:`\lambda_i = 0`:
    it has no graph embedding to speak of.
    """
    n = torch.as_tensor(np.asarray(counts), dtype=torch.float32)
    if threshold == 0:
        return (n > 0).float()
    return torch.clamp(n / float(threshold), max=1.0)  # n / inf = 0


@dataclass
class Blend:
    r"""The blend's settings: :math:`\tau` (``threshold``), :math:`a` (``graph_weight``),
    :math:`w` (``projection_weight``), :math:`\gamma` (``scale``), :math:`b` (``offset``) and
    the ridge penalty of the projection (``ridge_l2``, relative to the mean eigenvalue of
    the text Gram matrix)."""

    threshold: float = 100.0
    graph_weight: float = 1.0
    projection_weight: float = 0.0
    scale: float = 1.0
    offset: float = 0.0
    ridge_l2: float = 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["threshold"] = "inf" if math.isinf(self.threshold) else self.threshold
        return d

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([getattr(self, f.name) for f in fields(self)], dtype=torch.float64)

    @classmethod
    def from_tensor(cls, t: torch.Tensor) -> "Blend":
        return cls(*[float(x) for x in t.tolist()])


#: The lecture's textbook blend, used where validation cannot choose.
DEFAULT_BLEND = Blend()


def ridge_projection(x: torch.Tensor, y: torch.Tensor, l2: float) -> torch.Tensor:
    r""":math:`W` ``[d_y, d_x]`` minimising :math:`\lVert x W^\top - y\rVert^2 + \lambda
    \lVert W \rVert^2` with :math:`\lambda` = ``l2`` times the mean eigenvalue of
    :math:`x^\top x` (so ``l2`` means the same for any text encoder)."""
    x64, y64 = x.double(), y.double()
    gram = x64.T @ x64
    lam = float(l2) * float(torch.diagonal(gram).mean()) if gram.numel() else 0.0
    eye = torch.eye(gram.shape[0], dtype=torch.float64, device=gram.device)
    return torch.linalg.solve(gram + max(lam, 1e-12) * eye, x64.T @ y64).T.float()


def user_stats(users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean and standard deviation over ``items`` of each user's scores ``users @ items.T``,
    in closed form: :math:`\mu_u = e_u^\top \bar v`, :math:`\sigma_u^2 = e_u^\top \Sigma e_u`
    with :math:`\Sigma` the items' covariance. ``[n_users]`` each; :math:`\sigma` is floored
    at 1e-6 (a user whose scores are all equal)."""
    if items.shape[0] == 0:
        z = torch.zeros(users.shape[0], device=users.device)
        return z, torch.ones_like(z)
    u, v = users.double(), items.double()
    mean = v.mean(0)
    centred = v - mean
    cov = centred.T @ centred / v.shape[0]
    mu = u @ mean
    var = ((u @ cov) * u).sum(1).clamp_min(0.0)
    return mu.float(), var.sqrt().clamp_min(1e-6).float()


@dataclass
class HybridParts:
    """The fitted parts the blend combines; index order of the model's vocabularies.

    Attributes:
        user_graph, item_graph: final LightGCN embeddings (zero rows for items with no
            interactions).
        user_layer0, item_layer0: the layer-0 embeddings the propagation starts from
            (items with no interactions: their projected text), kept for :meth:`update`.
        profiles: users' text profiles (mean normalised text of their history).
        item_text: normalised item text embeddings.
        item_proj: projected text, ``item_text @ W.T``, in the graph item space.
        counts: training interactions per item.
    """

    user_graph: torch.Tensor
    item_graph: torch.Tensor
    user_layer0: torch.Tensor
    item_layer0: torch.Tensor
    profiles: torch.Tensor
    item_text: torch.Tensor
    item_proj: torch.Tensor
    counts: torch.Tensor

    def standardised(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per-user ``(mean, std)`` of the graph (over warm items), text and projection scores."""
        warm = self.counts > 0
        return {"graph": user_stats(self.user_graph, self.item_graph[warm.to(self.item_graph.device)]),
                "text": user_stats(self.profiles, self.item_text),
                "proj": user_stats(self.user_graph, self.item_proj)}

    def features(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Standardised ``(graph, text, projection)`` scores of ``users`` for every item."""
        stats = self.standardised()
        out = []
        for name, (u, v) in (("graph", (self.user_graph, self.item_graph)), ("text", (self.profiles, self.item_text)),
                             ("proj", (self.user_graph, self.item_proj))):
            mu, sd = stats[name]
            out.append((u[users] @ v.T - mu[users, None]) / sd[users, None])
        return tuple(out)

    def to(self, device) -> "HybridParts":
        return HybridParts(*[getattr(self, f.name).to(device) for f in fields(self)])


def combined_embeddings(parts: HybridParts, blend: Blend) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-user and per-item vectors whose dot product is the blended score :math:`s_{ui}`.

    Users: :math:`[e_u/\sigma^g_u,\ p_u/\sigma^t_u,\ e_u/\sigma^p_u,\ -\mu^g_u/\sigma^g_u,\
    -\mu^t_u/\sigma^t_u,\ -\mu^p_u/\sigma^p_u,\ 1]`; items: :math:`[k^g_i g_i,\ k^t_i c_i,\
    k^p_i W c_i,\ k^g_i,\ k^t_i,\ k^p_i,\ (1-\lambda_i) b]` with :math:`k^g_i = \lambda_i a`,
    :math:`k^t_i = \lambda_i (1 - a) + (1 - \lambda_i)\gamma (1 - w)` and
    :math:`k^p_i = (1 - \lambda_i)\gamma w` (see the module docstring).
    """
    stats = parts.standardised()
    (mu_g, sd_g), (mu_t, sd_t), (mu_p, sd_p) = stats["graph"], stats["text"], stats["proj"]
    users = torch.cat([
        parts.user_graph / sd_g[:, None], parts.profiles / sd_t[:, None], parts.user_graph / sd_p[:, None],
        (-mu_g / sd_g)[:, None], (-mu_t / sd_t)[:, None], (-mu_p / sd_p)[:, None],
        torch.ones_like(mu_g)[:, None]], dim=1)
    items = _item_side(parts.item_graph, parts.item_text, parts.item_proj,
                       blend_weights(parts.counts.cpu().numpy(), blend.threshold).to(parts.item_graph.device), blend)
    return users, items


def _item_side(graph, text, proj, lam, blend: Blend) -> torch.Tensor:
    a, w, gamma, b = blend.graph_weight, blend.projection_weight, blend.scale, blend.offset
    kg = lam * a
    kt = lam * (1 - a) + (1 - lam) * gamma * (1 - w)
    kp = (1 - lam) * gamma * w
    return torch.cat([kg[:, None] * graph, kt[:, None] * text, kp[:, None] * proj, kg[:, None], kt[:, None],
                      kp[:, None], ((1 - lam) * b)[:, None]], dim=1)


def _graph_and_text_parts(users, items, layer0_u, layer0_i, warm, text, profiles, counts, ridge_l2):
    """The parts of a hybrid from LightGCN's final and layer-0 embeddings (catalogue order;
    rows of items without interactions are replaced: zeros for the graph, projected text for
    layer 0) and the text; returns ``(parts, W, W0)``, the ridge projections of the text onto
    the warm items' final and layer-0 embeddings."""
    w = ridge_projection(text[warm], items[warm], ridge_l2)
    w0 = ridge_projection(text[warm], layer0_i[warm], ridge_l2)
    item_graph = torch.zeros_like(items)
    item_graph[warm] = items[warm]
    item_layer0 = text @ w0.T
    item_layer0[warm] = layer0_i[warm]
    return HybridParts(users, item_graph, layer0_u, item_layer0, profiles, text, text @ w.T, counts.float()), w, w0


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


def _count_csr(data: Interactions) -> sp.csr_matrix:
    """Users x items interaction counts (repeats add up), ``float32`` CSR."""
    m = sp.csr_matrix((np.ones(len(data), dtype=np.float32), (data.users, data.items)),
                      shape=(data.n_users, data.n_items))
    m.sum_duplicates()
    return m


class HybridRecommender(ContentAware, EmbeddingRecommender):
    r"""LightGCN and the content model blended on one calibrated scale (module docstring).

    Settings ``threshold`` (:math:`\tau`), ``graph_weight`` (:math:`a`) and
    ``projection_weight`` (:math:`w`) are each ``"auto"`` (default: chosen on validation)
    or a number; ``calibrate`` chooses :math:`(\gamma, b)` on validation (else 1 and 0).
    ``threshold=100, graph_weight=1, projection_weight=0, calibrate=False`` is the lecture's
    textbook blend :math:`\alpha_i = \min(n_i / 100, 1)`; ``threshold=0, graph_weight=1``
    is the graph part for every item with an interaction; ``threshold="inf",
    projection_weight=0`` is the content model.

    The graph part is trained exactly as :class:`~hybridrec.models.lightgcn.LightGCN` with
    the same settings and seed (so ``threshold=0, graph_weight=1`` reproduces it); an item
    with no training interactions, in the catalogue or new, is scored from its text.

    Args: see :class:`~hybridrec.models.embedding.EmbeddingRecommender` (``dim``,
        ``train``, ``seed``, ``device``, ``eval_batch_size``); plus
        threshold, graph_weight, projection_weight: the blend (see above).
        calibrate: fit the text part's scale and offset on validation (default True).
        calibration_users: validation users the blend is chosen on (at most; default 4000).
        n_layers, alphas: LightGCN propagation layers and layer weights (``n_layers=0``
            makes the graph part matrix factorisation).
        init_std: standard deviation of the initial embeddings.
        init: item id embeddings start ``"normal"`` (plain LightGCN, default), or at the
            projected text, ``"svd"`` (top singular directions) or ``"random"``.
        text_model, text_template, on_empty, text_batch_size: item text settings, as for
            :class:`~hybridrec.models.content.ContentRecommender`.
    """

    name = "hybrid"
    text_queries = True

    def __init__(self, dim: int = 64, threshold: float | str = "auto", graph_weight: float | str = "auto",
                 projection_weight: float | str = "auto", calibrate: bool = True, calibration_users: int = 4000,
                 n_layers: int = 3, alphas: list[float] | None = None, init_std: float = 0.1, init: str = "normal",
                 text_model: str | None = None, text_template: str = DEFAULT_TEMPLATE, on_empty: str = "error",
                 text_batch_size: int = 64, **kwargs):
        super().__init__(dim=dim, **kwargs)
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.threshold = _auto_or(threshold, parse_threshold, "threshold")
        self.graph_weight = _auto_or(graph_weight, _unit, "graph_weight")
        self.projection_weight = _auto_or(projection_weight, _unit, "projection_weight")
        if not isinstance(calibrate, bool):
            raise ValueError(f"calibrate must be true or false, got {calibrate!r}")
        self.calibrate, self.calibration_users = calibrate, int(calibration_users)
        self.init = init
        self.n_layers, self.alphas, self.init_std = int(n_layers), alphas, float(init_std)
        self._init_text(text_model, text_template, on_empty, text_batch_size)
        self.parts: HybridParts | None = None
        self.chosen: Blend | None = None
        self.selection: list[dict] = []

    def settings(self):
        def show(v):
            return "inf" if isinstance(v, float) and math.isinf(v) else v
        return {**super().settings(), **self._text_settings(), "threshold": show(self.threshold),
                "graph_weight": self.graph_weight, "projection_weight": self.projection_weight,
                "calibrate": self.calibrate, "calibration_users": self.calibration_users,
                "n_layers": self.n_layers, "alphas": self.alphas, "init_std": self.init_std, "init": self.init}

    # -- fitting -----------------------------------------------------------------------
    def fit(self, train: Interactions, valid: Interactions | None = None, *, item_embeddings=None,
            encoder=None, graph=None, dist=None) -> "HybridRecommender":
        """Embed the catalogue's text, train the graph part exactly as
        :class:`~hybridrec.models.lightgcn.LightGCN` would be (early stopping on ``valid``),
        fit the projection on the items with interactions and choose the blend on validation.

        Args:
            item_embeddings: precomputed content embeddings ``[n_items, d]`` (skips encoding).
            encoder: encoder object for the item strings; default :meth:`text_encoder`.
            graph: a :class:`~hybridrec.models.lightgcn.LightGCN` already fitted on ``train``
                with this model's settings (:meth:`can_reuse`), used as the graph part
                instead of training the same model again.
            dist: a data-parallel run's context: the graph part trains data-parallel (see
                :class:`~hybridrec.models.embedding.EmbeddingRecommender`); the rest is the
                same computation in every process.
        """
        if graph is not None and not self.can_reuse(graph, train):
            raise ValueError("graph: the LightGCN given was not fitted on this training data with this model's "
                             "settings (dim, n_layers, alphas, init_std, seed, train); fit without graph=")
        self._remember(train)
        self._seen = _count_csr(train)  # with multiplicity: text profiles count repeats, as the content model does
        self._content = self._content_for(train, item_embeddings, encoder).to(self.device)
        counts = train.item_counts()
        warm = counts > 0
        if not warm.any():
            raise ValueError(f"{train.name!r} has no training interactions: the hybrid needs some to train its graph part")
        if graph is not None:
            log.info("hybrid: the graph part is the LightGCN given (fitted with the same settings)")
            self.module, self.history = graph.module, graph.history
        else:
            torch.manual_seed(self.seed)
            self.module = self.build_module(train).to(self.device)
            self.history = train_bpr(self.module, train, valid, self.train_config, seed=self.seed,
                                     device=self.device, eval_batch_size=self.eval_batch_size, dist=dist)
        self.module.eval()
        with torch.no_grad():
            users, items = self.module()
        text = F.normalize(self._content.float(), dim=1)
        profiles = weighted_row_means(self._seen, text)  # the text part does not depend on the ridge penalty
        warm_idx = torch.as_tensor(np.flatnonzero(warm), device=self.device)

        def make_parts(ridge_l2: float) -> HybridParts:
            parts, self._proj_weight, self._proj0_weight = _graph_and_text_parts(
                users.detach(), items.detach(), self.module.user.weight.detach(), self.module.item.weight.detach(),
                warm_idx, text, profiles, torch.as_tensor(counts), ridge_l2)
            return parts

        self.chosen = self._choose(train, valid, make_parts)
        self.parts = make_parts(self.chosen.ridge_l2)
        self._cache_embeddings()
        return self

    def can_reuse(self, graph, train: Interactions) -> bool:
        """Whether ``graph`` (a fitted model) is the LightGCN this model would train on ``train``."""
        if getattr(graph, "name", None) != "lightgcn" or graph.module is None or self.init != "normal":
            return False
        mine, theirs = self.settings(), graph.settings()
        same = all(mine[k] == theirs[k] for k in ("dim", "seed", "train", "n_layers", "alphas", "init_std"))
        same = same and theirs.get("init", "normal") == "normal"
        return (same and graph.user_vocab == train.user_vocab and graph.item_vocab == train.item_vocab
                and graph._seen is not None and graph._seen.nnz == train.to_csr().nnz
                and torch.device(graph.device) == self.device)

    def build_module(self, train: Interactions) -> nn.Module:
        """LightGCN on ``train``; with ``init`` "svd"/"random" its item embeddings start at
        their projected text."""
        graph = BipartiteGraph(train.to_csr(), device=self.device)
        module = LightGCNModule(graph, self.dim, self.n_layers, self.alphas, self.init_std)
        if self.init != "normal":
            content = self._content.float().cpu()
            with torch.no_grad():
                w = _initial_projection(content, self.dim, self.init, self.init_std)
                module.item.weight.copy_((content @ w.T).to(module.item.weight.device))
        return module

    # -- choosing the blend on validation ------------------------------------------------
    def _fixed(self) -> dict:
        out = {}
        for name in ("threshold", "graph_weight", "projection_weight"):
            v = getattr(self, name)
            if v != "auto":
                out[name] = float(v)
        return out

    def _choose(self, train: Interactions, valid: Interactions | None, make_parts) -> Blend:
        """The blend: fixed settings as given, the rest chosen on validation (see the module
        docstring); :data:`DEFAULT_BLEND` values where validation cannot decide.
        ``make_parts(ridge_l2)`` gives the parts for a ridge penalty of the projection."""
        fixed = self._fixed()
        blend = Blend(**{**asdict(DEFAULT_BLEND), "threshold": 0.0, **fixed})
        self.selection = []
        if valid is None or len(valid) == 0:
            if len(fixed) < 3 or self.calibrate:
                log.warning("hybrid: no validation data; blend settings not chosen are the textbook ones %s",
                            DEFAULT_BLEND.to_dict())
            return Blend(**{**asdict(DEFAULT_BLEND), **fixed})
        counts = train.item_counts()
        cold = torch.as_tensor(counts == 0)
        v_users, pos, seen = self._validation_block(train, valid)
        has_cold = bool((pos & cold).any())
        if not has_cold and (self.projection_weight == "auto" or self.calibrate or self.threshold == "auto"):
            log.warning("hybrid: the validation data has no interactions of items without training interactions, "
                        "so the text part's calibration cannot be chosen (use a cold_item split with "
                        "valid_cold_fraction > 0); using the defaults for it")
        _, k = parse_metric(self.train_config.valid_metric)
        k = max(1, k)
        all_cols = torch.ones_like(cold)
        lam_cache: dict[float, torch.Tensor] = {}

        def lam(tau):
            if tau not in lam_cache:
                lam_cache[tau] = blend_weights(counts, tau)
            return lam_cache[tau]

        def features(l2):
            return make_parts(l2).features(v_users)

        g, t, p = features(blend.ridge_l2)
        pick = self._picker()
        half = torch.as_tensor(np.random.default_rng(self.seed).random(train.n_items) < 0.5, device=pos.device)
        sets = [pos, pos & half, pos & ~half]  # all validation positives, and those of two halves of the items
        # 1. the text form, on cold items ranked among themselves (w = 0: the content model)
        if has_cold and self.projection_weight == "auto" and int(cold.sum()) >= k:
            cands = []
            for l2 in RIDGE_L2:
                if l2 != blend.ridge_l2:
                    g, t, p = features(l2)
                cands += [({"ridge_l2": l2, "projection_weight": w}, _recall((1 - w) * t + w * p, sets, seen, cold, k))
                          for w in PROJECTION_WEIGHTS if w > 0 or l2 == RIDGE_L2[0]]
            chosen = pick("text", cands)
            blend.ridge_l2, blend.projection_weight = chosen["ridge_l2"], chosen["projection_weight"]
            g, t, p = features(blend.ridge_l2)
        f = (1 - blend.projection_weight) * t + blend.projection_weight * p
        # 2. graph against the user's text profile on warm items ranked among themselves
        #    (a = 1: LightGCN; the projected text adds nothing the graph lacks on these items)
        warm_cols = ~cold
        if self.graph_weight == "auto":
            cands = [({"graph_weight": a}, _recall(a * g + (1 - a) * t, sets, seen, warm_cols, k))
                     for a in GRAPH_WEIGHTS]
            blend.graph_weight = pick("graph_weight", cands)["graph_weight"]
        a = blend.graph_weight
        warm_score = a * g + (1 - a) * t
        # 3. the text part's scale and offset, over the whole catalogue (first: cold items after
        #    warm ones, as a graph model ranks them). With tau = 0 each group keeps its own
        #    order, so merging each user's top-k of both groups suffices.
        if has_cold and self.calibrate:
            merge = _TopMerge(warm_score, f, sets, seen, cold, k)
            grid = [(1.0, COLD_LAST)] + [(gamma, b) for gamma in SCALES for b in OFFSETS]
            chosen = pick("calibration", [({"scale": gm, "offset": b}, merge.recall(gm, b)) for gm, b in grid])
            blend.scale, blend.offset = chosen["scale"], chosen["offset"]
        # 4. the threshold, over the whole catalogue, not at the expense of warm items
        if self.threshold == "auto":
            base_warm = float(_recall(_blended(warm_score, f, lam(0.0), blend.scale, blend.offset),
                                      pos, seen, warm_cols, k).mean())
            cands = []
            for tau in THRESHOLDS:
                s = _blended(warm_score, f, lam(tau), blend.scale, blend.offset)
                rw = float(_recall(s, pos, seen, warm_cols, k).mean())
                if not rw >= base_warm * 0.995 and not math.isnan(rw):  # nan: no warm positives
                    self.selection.append({"stage": "threshold", "threshold": tau, "warm_recall": rw,
                                           "kept_warm": False})
                else:
                    cands.append(({"threshold": tau, "warm_recall": rw}, _recall(s, sets, seen, all_cols, k)))
            blend.threshold = pick("threshold", cands)["threshold"]
        log.info("hybrid: blend chosen on validation (%d users): %s", len(v_users), blend.to_dict())
        return blend

    def _picker(self):
        """``pick(stage, candidates)``: the blend's guard against validation noise.

        Candidates are ``(settings, [recall, recall on half A, recall on half B])`` (per-user
        recalls; A and B split the items in two at random), the pure part first. A candidate
        counts only if it beats the first on both halves of the items, so a setting that
        wins through a few items does not count. Of those, the first one whose mean is within
        :data:`SE_RULE` standard errors (of its paired difference with the best) of the best
        is chosen.
        """
        def pick(stage: str, cands: list[tuple[dict, list[torch.Tensor]]]) -> dict:
            def mean(r):
                return float(r.mean()) if r.numel() else 0.0
            ref = cands[0][1]
            agree = [i == 0 or all(r[h].numel() == 0 or mean(r[h]) > mean(ref[h]) for h in (1, 2))
                     for i, (_, r) in enumerate(cands)]  # a half without positives has no say
            means = [mean(r[0]) for _, r in cands]
            ib = max((i for i in range(len(cands)) if agree[i]), key=lambda i: (means[i], -i))
            chosen = None
            for i, (settings, r) in enumerate(cands):
                d = (cands[ib][1][0] - r[0]).double()
                se = float(d.std() / math.sqrt(d.numel())) if d.numel() > 1 else 0.0
                if agree[i] and chosen is None and means[ib] - means[i] <= SE_RULE * se:
                    chosen = settings
                self.selection.append({"stage": stage, **settings, "recall": means[i], "se_to_best": se,
                                       "both_halves": agree[i], "best": i == ib, "chosen": settings is chosen})
            return chosen
        return pick

    def _validation_block(self, train: Interactions, valid: Interactions):
        """A seeded sample of validation users: their indices, validation positives and
        training items as ``bool [n_users', n_items]`` masks."""
        users = np.unique(valid.users)
        n_items = train.n_items
        cap = max(100, min(self.calibration_users, CALIBRATION_CELLS // max(n_items, 1)))
        if len(users) > cap:
            users = np.sort(np.random.default_rng(self.seed).choice(users, size=cap, replace=False))
        row = np.full(train.n_users, -1, dtype=np.int64)
        row[users] = np.arange(len(users))

        def mask(data):
            keep = row[data.users] >= 0
            m = torch.zeros(len(users), n_items, dtype=torch.bool)
            m[torch.as_tensor(row[data.users[keep]]), torch.as_tensor(data.items[keep])] = True
            return m

        return torch.as_tensor(users, device=self.device), mask(valid).to(self.device), mask(train).to(self.device)

    # -- scoring ---------------------------------------------------------------------------
    @torch.no_grad()
    def _cache_embeddings(self) -> None:
        self._user_emb, self._item_emb = combined_embeddings(self.parts, self.chosen)

    def _item_vectors(self, content: torch.Tensor) -> torch.Tensor:
        text = F.normalize(content.float().to(self.device), dim=1)
        proj = text @ self._proj_weight.T
        lam = torch.zeros(text.shape[0], device=self.device)
        graph = torch.zeros(text.shape[0], self.parts.item_graph.shape[1], device=self.device)
        return _item_side(graph, text, proj, lam, self.chosen)

    def _user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self._user_emb[users.to(self._user_emb.device)]

    @property
    def blend(self) -> torch.Tensor:
        r"""Graph-side weights :math:`\lambda_i` of every catalogue item, ``[n_items]``."""
        self._check_fitted()
        return blend_weights(self.parts.counts.cpu().numpy(), self.chosen.threshold)

    # -- folding in new interactions ---------------------------------------------------------
    @torch.no_grad()
    def update(self, interactions, items=None, *, encoder=None, user_col: str = "user_id",
               item_col: str = "item_id") -> dict:
        r"""Fold new interactions in without retraining.

        New users and new items (with their text in ``items``) join the vocabularies. The
        item counts, and with them :math:`\lambda_i`, grow; users' text profiles are
        recomputed; LightGCN propagates over the grown graph from the trained layer-0
        embeddings (new items start from their projected text, new users from the mean of
        their items), so an item's graph embedding comes from its neighbours as it gains
        them. The chosen blend stays as it is.

        Args:
            interactions: DataFrame (or list of dicts) with ``user_col`` and ``item_col``.
            items: new items with their text (``item_id`` and text fields), for item ids the
                model does not know.
            encoder: the encoder the catalogue was encoded with; default :meth:`text_encoder`.

        Returns:
            ``{"interactions", "new_users", "new_items", "items_touched"}`` counts.

        Raises:
            DataError: a row names an unknown item with no text in ``items``, or an id is empty.
        """
        self._check_fitted()
        frame = interactions if isinstance(interactions, pd.DataFrame) else pd.DataFrame(list(interactions))
        for col in (user_col, item_col):
            if col not in frame.columns:
                raise DataError(f"new interactions need a {col!r} column; got columns {list(frame.columns)}")
        u_ids = frame[user_col].astype(str).str.strip().to_numpy(dtype=object)
        i_ids = frame[item_col].astype(str).str.strip().to_numpy(dtype=object)
        for ids, col in ((u_ids, user_col), (i_ids, item_col)):
            empty = np.flatnonzero((ids == "") | (ids == "nan"))
            if len(empty):
                raise DataError(f"new interactions row {int(empty[0])}: empty {col!r}")
        item_vocab, content, new_item_count = self.item_vocab, self._content, 0
        if items is not None:  # checked and encoded first; the model changes only once all is valid
            new = self.new_items(items, encoder, where="update items")
            new_item_count = len(new)
            item_vocab = Vocabulary(np.concatenate([item_vocab.ids, np.asarray(new.ids, dtype=object)]), kind="item")
            content = torch.cat([content, new.content.to(self.device)])
        known_items = item_vocab.index(list(i_ids), missing="neg")
        if (known_items < 0).any():
            bad = list(dict.fromkeys(i_ids[known_items < 0]))
            raise DataError(f"new interactions name {len(bad)} unknown item(s) with no text, e.g. {bad[:5]}; "
                            "pass their text in items=... (item_id plus text fields; --new-items on the command line)")
        known_users = self.user_vocab.index(list(u_ids), missing="neg")
        fresh = list(dict.fromkeys(u_ids[known_users < 0]))
        user_vocab = self.user_vocab
        if fresh:
            user_vocab = Vocabulary(np.concatenate([user_vocab.ids, np.asarray(fresh, dtype=object)]), kind="user")
        self.item_vocab, self._content, self.user_vocab = item_vocab, content, user_vocab
        users = np.asarray(self.user_vocab.index(list(u_ids)), dtype=np.int64)
        items_idx = np.asarray(known_items, dtype=np.int64)
        n_users, n_items = len(self.user_vocab), len(self.item_vocab)
        old = self._seen.tocoo()
        seen = sp.csr_matrix((np.concatenate([old.data, np.ones(len(users))]),
                              (np.concatenate([old.row, users]), np.concatenate([old.col, items_idx]))),
                             shape=(n_users, n_items))
        seen.sum_duplicates()
        self._seen = seen
        self.parts = self._folded_parts(seen)
        self._cache_embeddings()
        return {"interactions": len(users), "new_users": len(fresh), "new_items": new_item_count,
                "items_touched": int(len(np.unique(items_idx)))}

    def _folded_parts(self, seen: sp.csr_matrix) -> HybridParts:
        """Parts for the grown graph ``seen`` (interaction counts; users and items beyond the
        current parts are new): LightGCN's propagation from the layer-0 embeddings. Pure:
        the model is not changed."""
        n_users = seen.shape[0]
        counts = torch.as_tensor(np.asarray(seen.sum(axis=0)).ravel().astype(np.int64))
        p = self.parts
        text = F.normalize(self._content.float(), dim=1)
        n_old_items, n_old_users = p.item_layer0.shape[0], p.user_layer0.shape[0]
        item0 = torch.cat([p.item_layer0, text[n_old_items:] @ self._proj0_weight.T])
        binary = seen.copy()
        binary.data[:] = 1.0
        if n_users > n_old_users:  # new users start at the mean layer-0 embedding of their items
            rows = binary[n_old_users:]
            deg = np.maximum(np.asarray(rows.sum(axis=1)).ravel(), 1.0)
            mean = sp.diags(1.0 / deg) @ rows
            new_u = torch.as_tensor(np.asarray(mean.astype(np.float32) @ item0.cpu().numpy()), device=self.device)
            user0 = torch.cat([p.user_layer0, new_u])
        else:
            user0 = p.user_layer0
        graph = BipartiteGraph(binary.tocsr(), device=self.device)
        module = LightGCNModule(graph, user0.shape[1], self.n_layers, self.alphas, self.init_std).to(self.device)
        module.user.weight.data.copy_(user0)
        module.item.weight.data.copy_(item0)
        module.eval()
        users, items = module()
        warm = (counts > 0).to(self.device)
        item_graph = torch.where(warm[:, None], items, torch.zeros_like(items))
        return HybridParts(users, item_graph, user0, item0, weighted_row_means(seen, text), text,
                           text @ self._proj_weight.T, counts.float())

    # -- new users and similar items ---------------------------------------------------------
    @torch.no_grad()
    def score_item_sets(self, item_sets) -> torch.Tensor:
        r"""Each new user folded in as :meth:`update` would fold them in, alone, without
        changing the model: the graph grown by their interactions (a repeat counts twice),
        their layer-0 embedding the mean of their items', LightGCN's propagation, their text
        profile, and the grown item counts in :math:`\lambda_i`. One propagation per user."""
        out = []
        for items in item_sets:
            seen = sp.vstack([self._seen, item_sets_csr([items], self.n_items, counts=True)]).tocsr()
            p = self._folded_parts(seen)
            mine = HybridParts(p.user_graph[-1:], p.item_graph, p.user_layer0[-1:], p.item_layer0, p.profiles[-1:],
                               p.item_text, p.item_proj, p.counts)  # the standardisation is per user
            users, items_vec = combined_embeddings(mine, self.chosen)
            out.append(users @ items_vec.T)
        return torch.cat(out)

    def score_texts(self, texts, encoder=None) -> torch.Tensor:
        r"""The text part for a user with no history: the standardised score
        :math:`\hat t_{ui}` of the text profile :math:`p` (the encoded text, normalised, as a
        one-item profile) against the items' text. With no graph embedding, the graph and
        projected-text scores are unknown, so the blend, which weighs them, is not applied;
        the ranking is the content model's cosine ranking."""
        profile = F.normalize(self._encode_texts(texts, encoder), dim=1)
        mu, sd = user_stats(profile, self.parts.item_text)
        return (profile @ self.parts.item_text.T - mu[:, None]) / sd[:, None]

    def item_similarities(self, items: torch.Tensor) -> torch.Tensor:
        r"""Pearson correlation of two items' blended scores over the model's users,
        :math:`v_i^\top \Sigma v_j / (\sigma_i \sigma_j)` with :math:`v` the combined item
        vectors and :math:`\Sigma` the users' covariance: the combined vectors carry
        per-user constants (the standardisation, the text part's offset) that a plain cosine
        would mistake for likeness."""
        u, v = self._user_emb.double(), self._item_emb.double()
        centred = u - u.mean(0)
        cov = centred.T @ centred / max(len(u), 1)
        vc = v @ cov
        sd = (vc * v).sum(1).clamp_min(0).sqrt()
        sel = items.to(v.device)
        return ((vc[sel] @ v.T) / (sd[sel, None] * sd[None, :]).clamp_min(1e-12)).float()

    # -- devices and persistence -------------------------------------------------------------
    def to(self, device) -> "HybridRecommender":
        super().to(device)
        if self._content is not None:
            self._content = self._content.to(self.device)
        if self.parts is not None:
            self.parts = self.parts.to(self.device)
            self._proj_weight, self._proj0_weight = self._proj_weight.to(self.device), self._proj0_weight.to(self.device)
        return self

    def _state(self):
        settings, tensors = super()._state()
        parts = {f"part_{f.name}": getattr(self.parts, f.name) for f in fields(HybridParts)}
        return settings, {**tensors, **parts, "item_content": self._content, "proj_weight": self._proj_weight,
                          "proj0_weight": self._proj0_weight, "blend": self.chosen.as_tensor(),
                          "seen_counts": torch.as_tensor(self._seen.data, dtype=torch.float32)}

    def _restore(self, settings, tensors):
        super()._restore(settings, tensors)
        self._content = tensors["item_content"].to(self.device)
        self._proj_weight = tensors["proj_weight"].to(self.device)
        self._proj0_weight = tensors["proj0_weight"].to(self.device)
        self.parts = HybridParts(*[tensors[f"part_{f.name}"].to(self.device) for f in fields(HybridParts)])
        self.chosen = Blend.from_tensor(tensors["blend"])
        if self._seen is not None and "seen_counts" in tensors:
            self._seen.data = tensors["seen_counts"].numpy().astype(np.float32)


def _blended(warm_score, f, lam, gamma, b):
    lam = lam.to(warm_score.device)
    return lam * warm_score + (1 - lam) * (gamma * f + b)


class _TopMerge:
    """Recall@k over the whole catalogue of ``warm`` scores on warm items and
    ``gamma * cold + b`` on cold ones, for many ``(gamma, b)``, from each user's top-k of
    each group (for ``gamma > 0`` the overall top-k is the top-k of their union). ``pos``: a
    list of positive masks; :meth:`recall` gives one per-user result per mask."""

    def __init__(self, warm, cold_score, pos, seen, cold, k):
        cold = cold.to(warm.device)
        vals, idx = [], []
        for s, mask in ((warm, cold), (cold_score, ~cold)):
            v, i = torch.topk(s.masked_fill(seen | mask, -torch.inf), min(k, s.shape[1]), dim=1)
            vals.append(v)
            idx.append(i)
        self.wv, self.cv = vals
        finite = torch.isfinite(torch.cat(vals, dim=1))
        self.sets = []
        for m in pos:
            relevant = m.sum(1)
            ok = relevant > 0
            hits = torch.cat([m.gather(1, i) for i in idx], dim=1) & finite
            self.sets.append((ok, hits[ok], relevant[ok].double()))
        self.k = k

    def recall(self, gamma: float, b: float) -> list[torch.Tensor]:
        """Per-user Recall@k (users with a positive), ``float64``, for each positive mask."""
        vals = torch.cat([self.wv, gamma * self.cv + b], dim=1)
        top = torch.topk(vals, min(self.k, vals.shape[1]), dim=1).indices
        return [hits.gather(1, top[ok]).sum(1).double() / relevant for ok, hits, relevant in self.sets]


def _recall(scores: torch.Tensor, pos, seen: torch.Tensor, cols: torch.Tensor, k: int):
    """Per-user Recall@k (``float64``) of the users with a positive among ``cols``, ranking
    only ``cols`` (training items masked). ``pos`` a mask, or a list of masks (one top-k,
    one result per mask)."""
    many = isinstance(pos, (list, tuple))
    masks = list(pos) if many else [pos]
    cols = cols.to(scores.device)
    s = scores.masked_fill(seen | ~cols, -torch.inf)
    top = torch.topk(s, min(k, s.shape[1]), dim=1).indices
    out = []
    for m in masks:
        relevant = (m & cols).sum(1)
        ok = relevant > 0
        out.append(m[ok].gather(1, top[ok]).sum(1).double() / relevant[ok].double())
    return out if many else out[0]
