r"""PinSage (Ying et al. 2018, https://arxiv.org/abs/1806.01973): sampled graph convolutions on items.

Each item's neighbourhood is its ``T`` most visited items of random walks with restart on
the item-user-item graph (:mod:`hybridrec.graph.walks`), weighted by visit counts. ``K``
convolutions (:class:`PinSageConv`) run on the sampled computation graph of a mini-batch
only, so memory is bounded by ``batch x (1 + T + ... + T^K)`` nodes, not by the graph.
Items enter as projected content (text) embeddings plus, for items with interactions,
learned id embeddings; users have no parameters: a user is the mean of the final
embeddings of their most recent training items, and scores are dot products.
"""

from __future__ import annotations

import logging
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Interactions
from ..data.sequences import history_means, history_tail, recent_items
from ..graph.walks import ComputationGraph, WalkGraph, computation_graph, neighbour_table
from ..text.item_text import DEFAULT_TEMPLATE
from ..train import TrainHistory, UniformNegativeSampler, attach, fit_loop, ranking_validator
from ..train.distributed import DistContext
from .content_base import ContentAware
from .embedding import EmbeddingRecommender

LOSSES = ("bpr", "margin")
QUERY_FROM = ("recent", "preceding")
log = logging.getLogger("hybridrec.train")


def curriculum(epoch: int, easy_epochs: int = 1, hard_per_epoch: int = 1, max_hard: int = 6) -> int:
    """Hard negatives per positive at 0-based ``epoch``: none during the first ``easy_epochs``
    epochs, then ``hard_per_epoch`` more each epoch, capped at ``max_hard``.

    With the defaults this is the paper's schedule: at (1-based) epoch n, n - 1 hard negatives.
    """
    return int(min(max_hard, max(0, epoch - easy_epochs + 1) * hard_per_epoch))


class PinSageConv(nn.Module):
    r"""One PinSage convolution: importance pooling of the neighbours, concat, dense, normalise.

    .. math::
        h_{N(v)} = \frac{\sum_{u \in N(v)} \alpha_{vu}\, \mathrm{ReLU}(Q h_u + q)}{\sum_{u \in N(v)} \alpha_{vu}},
        \qquad h'_v = \frac{z_v}{\lVert z_v \rVert_2}, \quad
        z_v = \mathrm{ReLU}(W [h_v ; h_{N(v)}] + w)

    A node with no neighbour (all weights 0) gets :math:`h_{N(v)} = 0`.

    Args:
        in_dim: size of the input vectors :math:`h`.
        out_dim: size of the output :math:`h'`.
        hidden_dim: size of the pooled neighbour messages (default ``in_dim``).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None):
        super().__init__()
        hidden = hidden_dim or in_dim
        self.neighbour = nn.Linear(in_dim, hidden)  # Q, q
        self.update = nn.Linear(in_dim + hidden, out_dim)  # W, w

    def forward(self, h: torch.Tensor, self_index: torch.Tensor, neighbour_index: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
        """``h [n_src, in_dim]``; ``self_index [n]``, ``neighbour_index [n, T]`` (``-1``: none)
        and ``weights [n, T]`` index into ``h``. Returns ``[n, out_dim]``."""
        msg = F.relu(self.neighbour(h))
        w = torch.where(neighbour_index >= 0, weights, torch.zeros_like(weights))
        w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
        # a weighted bag sum: forward + backward 4.7x faster than gathering [n, T, d] on CPU
        # (64 vs 300 ms, 30k nodes, T=10, 2 cores; benchmarks/pinsage_pooling.py)
        if neighbour_index.shape[1] == 0:  # no neighbour lists at all (new items)
            pooled = msg.new_zeros(len(neighbour_index), msg.shape[1])
        else:
            pooled = F.embedding_bag(neighbour_index.clamp_min(0), msg, mode="sum", per_sample_weights=w)
        return F.normalize(F.relu(self.update(torch.cat([h[self_index], pooled], -1))), dim=-1)


class PinSageModule(nn.Module):
    r"""Item inputs, ``n_layers`` :class:`PinSageConv`\ s, the paper's final dense head and a skip.

    .. math::
        h^{(0)}_i = P c_i + p + m_i e_i, \qquad h^{(l)} = \mathrm{conv}_l(h^{(l-1)}), \qquad
        z_i = G_2\, \mathrm{ReLU}(G_1 h^{(K)}_i + g_1) + g_2 + S h^{(0)}_i

    :math:`c_i` fixed content embeddings and :math:`P, p` a learned projection (absent
    without content), :math:`e_i` learned id embeddings and :math:`m_i` = ``has_id[i]`` (1
    for items with interactions; absent with ``has_id=None``).

    The skip :math:`S h^{(0)}_i` is not in the paper (DGL's PinSage example has the same
    one). Without it, the stack of normalised ReLU layers collapsed every item onto one
    direction (a popularity ranking) on the toy block data in about a quarter of the
    seeds, at Adam learning rates 0.05 and 0.01; with it, none did.

    Args:
        n_items: catalogue size.
        dim: size of the output :math:`z`.
        n_layers: convolutions ``K``.
        content: content embeddings ``[n_items, d_c]`` or None.
        has_id: ``[n_items]`` mask of items with an id embedding, or None for no id embeddings.
        init_std: standard deviation of the initial id embeddings.
        hidden_dim: size of :math:`h^{(0)} .. h^{(K)}` and of the head's hidden layer
            (default ``dim``).
        sparse_ids: sparse gradients for the id embeddings (only the batch's rows).
    """

    def __init__(self, n_items: int, dim: int, n_layers: int = 2, content: torch.Tensor | None = None,
                 has_id: torch.Tensor | None = None, init_std: float = 0.1, hidden_dim: int | None = None,
                 sparse_ids: bool = False):
        super().__init__()
        hid = hidden_dim or dim
        if content is None and has_id is None:
            raise ValueError("PinSage needs content embeddings, id embeddings, or both")
        self.register_buffer("content", None if content is None else content.float())
        self.proj = None if content is None else nn.Linear(content.shape[1], hid)
        self.register_buffer("has_id", None if has_id is None else has_id.float())
        self.item = None if has_id is None else nn.Embedding(n_items, hid, sparse=sparse_ids)
        if self.item is not None:
            nn.init.normal_(self.item.weight, std=init_std)
        self.convs = nn.ModuleList(PinSageConv(hid, hid) for _ in range(n_layers))
        self.head = nn.Sequential(nn.Linear(hid, hid), nn.ReLU(), nn.Linear(hid, dim))
        self.skip = nn.Linear(hid, dim, bias=False)

    def inputs(self, items: torch.Tensor) -> torch.Tensor:
        """Layer-0 vectors :math:`h^{(0)}` of item indices, ``[len(items), hidden_dim]``."""
        x = 0
        if self.proj is not None:
            x = self.proj(self.content[items])
        if self.item is not None:
            x = x + self.item(items) * self.has_id[items, None]
        return x

    def forward(self, graph: ComputationGraph) -> torch.Tensor:
        """Final embeddings of the targets of a sampled computation graph, ``[n_targets, dim]``."""
        h = h0 = self.inputs(graph.nodes)
        for conv, (s, n, w) in zip(self.convs, graph.layers):
            h, h0 = conv(h, s, n, w), h0[s]
        return (self.head(h) + self.skip(h0))[graph.target_index]

    def embed_isolated(self, content: torch.Tensor) -> torch.Tensor:
        """Final embeddings of items with content ``[m, d_c]``, no id and no neighbours."""
        if self.proj is None:
            raise ValueError("this PinSage module has no content projection")
        h = h0 = self.proj(content)
        none = torch.empty((len(h), 0), dtype=torch.long, device=content.device)
        for conv in self.convs:
            h = conv(h, torch.arange(len(h), device=content.device), none, none.float())
        return self.head(h) + self.skip(h0)


def topk_chunked(queries: torch.Tensor, items: torch.Tensor, mask: torch.Tensor, k: int,
                  max_pairs: int = 2 ** 24) -> torch.Tensor:
    """Indices of the ``k`` best items (``mask`` true) for each query, ``[B, k]``, scoring
    about ``max_pairs`` (query, item) pairs at a time."""
    chunk = max(k, max_pairs // max(1, len(queries)))
    best_v = best_i = None
    for s in range(0, len(items), chunk):
        v = queries @ items[s:s + chunk].T
        v = v.masked_fill(~mask[s:s + chunk], -torch.inf)
        i = torch.arange(s, s + v.shape[1], device=v.device).expand_as(v)
        if best_v is not None:
            v, i = torch.cat([best_v, v], 1), torch.cat([best_i, i], 1)
        top = torch.topk(v, min(k, v.shape[1]), dim=1)
        best_v, best_i = top.values, i.gather(1, top.indices)
    return best_i


class PinSage(ContentAware, EmbeddingRecommender):
    r"""PinSage: importance-sampled graph convolutions over items; users as their items' mean.

    **Training** is the paper's item-to-item objective: for each training interaction
    :math:`(u, i)`, the query :math:`z_q` is the mean embedding of ``query_items`` items
    drawn (with replacement) from the user's ``user_history`` most recent items other than
    :math:`i` (with ``query_items=1``, the paper's single co-interacted item; more brings
    the query closer to the mean a user is scored through), or, with
    ``query_from="preceding"``, from the ``query_window`` items just before :math:`i` in
    the user's time-ordered history (next-item training, for temporal splits), the
    positive is :math:`i`, and
    the loss (``loss``: ``"bpr"``, or ``"margin"``, the paper's
    :math:`\max(0, z_q \cdot z_n - z_q \cdot z_i + \Delta)`) ranks :math:`z_q \cdot z_i`
    above :math:`z_q \cdot z_n` for each negative :math:`n`. A pair needs
    ``query_items + 1`` targets plus its negatives (no user tower) and trains every
    parameter used at scoring time. Negatives: ``n_easy`` uniform items per pair (never
    one of the user's items, and only items with interactions, so cold and new items are
    not pushed down), plus :func:`curriculum` hard negatives: items ranked in
    ``hard_window`` (0-based ranks ``[lo, hi)``) for the query by the embeddings of the
    start of the epoch, again not the user's items.

    **Data-parallel**: given ``fit(..., dist=...)`` (the context of a run started by
    ``accelerate launch``, see :mod:`hybridrec.train.distributed`; the run passes it), every
    process samples the same batches and trains on its own contiguous share of each;
    DDP averages the gradients, so the updates are a single process's up to float
    summation order.

    **Scoring**: :math:`s_{ui} = \bar z_u \cdot z_i`, :math:`\bar z_u` the mean of the final
    embeddings of :math:`u`'s ``user_history`` most recent training items (users with
    none score 0). Neighbour tables (:func:`~hybridrec.graph.walks.neighbour_table`) are
    sampled once per fit, seeded, and reused for training and inference.

    **New users** known by liked items are scored as training users are, through the mean of
    those items' embeddings; PinSage has no text space for users, so it does not take a
    free-text description (``recommend_for_text``). Similar items: cosine of the final item
    embeddings.

    **Cold and new items**: an item without interactions has no neighbours and no id
    embedding, so it goes through the same layers with an empty neighbourhood
    (:math:`h_{N} = 0`) from its projected content alone; a brand-new item is embedded
    that way (:meth:`PinSageModule.embed_isolated`) without retraining, and scores exactly as
    a catalogue item with the same content and no interactions.

    Args: see :class:`~hybridrec.models.embedding.EmbeddingRecommender` (``dim``, ``train``:
        epochs, batch_size (pairs per step), lr, l2 (on the batch's layer-0 vectors),
        eval_every / patience / valid_metric, progress; ``seed``, ``device``,
        ``eval_batch_size``); plus
        n_layers: convolutions ``K`` (default 2).
        fan_out: neighbours kept per item ``T`` (default 10).
        n_walks, walk_length, restart_p: random walks per item, item-to-item hops per walk,
            restart probability.
        user_history: recent items a user is scored through (default 50).
        loss: ``"bpr"`` (default) or ``"margin"``; margin: :math:`\Delta`.
        n_easy: uniform negatives per pair (default 1).
        query_items: history items averaged into a training query (default 1, the paper's
            item-to-item pairs; more brings training closer to scoring through the mean).
        query_from: where a pair's query items come from: ``"recent"`` (default), the
            user's ``user_history`` most recent items other than the positive; or
            ``"preceding"``, the ``query_window`` items (default ``user_history``) just
            before the positive in the user's time-ordered history (rows without
            timestamps: row order), so training poses the task a temporal test does,
            the next items from the ones before them; a user's first item is not a positive.
        query_window: see ``query_from``.
        steps_per_epoch: batches per epoch (default None: every training pair once); large
            graphs train by steps, each epoch a fresh random subset of the pairs.
        sparse_ids: sparse gradients and ``SparseAdam`` for the id embeddings, so a step
            updates only its batch's rows: the step's cost then does not grow with the
            catalogue (default False; not with DDP).
        easy_epochs, hard_per_epoch, max_hard: the :func:`curriculum` of hard negatives.
        hard_window: ``[lo, hi)`` ranks hard negatives are drawn from (default ``[10, 100]``).
        use_content: item content in the inputs: True, False (ids only, e.g. Gowalla), or
            None (default): when ``fit`` gets ``item_embeddings`` or the data has an item
            table (an ``encoder`` alone does not switch content on).
        id_embedding: learned id embeddings for items with interactions (default True).
        hidden_dim: width of the inputs, convolutions and head (default ``max(dim, 64)``:
            narrow ReLU layers followed by L2 normalisation can die all at once; with
            ``dim=4`` they do).
        init_std: standard deviation of the initial id embeddings.
        infer_batch_size: target items per batch when embedding the whole catalogue.
        text_model, text_template, on_empty, text_batch_size: item text settings, as for
            :class:`~hybridrec.models.content.ContentRecommender`.
    """

    name = "pinsage"
    distributed = True

    def __init__(self, dim: int = 64, n_layers: int = 2, fan_out: int = 10, n_walks: int = 50,
                 walk_length: int = 4, restart_p: float = 0.3, user_history: int = 50, loss: str = "bpr",
                 margin: float = 0.1, query_items: int = 1, query_from: str = "recent",
                 query_window: int | None = None, steps_per_epoch: int | None = None,
                 sparse_ids: bool = False, n_easy: int = 1, easy_epochs: int = 1, hard_per_epoch: int = 1,
                 max_hard: int = 6,
                 hard_window: list[int] | tuple[int, int] = (10, 100), use_content: bool | None = None,
                 id_embedding: bool = True, hidden_dim: int | None = None, init_std: float = 0.1,
                 infer_batch_size: int = 1024,
                 text_model: str | None = None, text_template: str = DEFAULT_TEMPLATE, on_empty: str = "error",
                 text_batch_size: int = 64, **kwargs):
        super().__init__(dim=dim, **kwargs)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if query_from not in QUERY_FROM:
            raise ValueError(f"query_from must be one of {QUERY_FROM}, got {query_from!r}")
        if query_window is not None and int(query_window) < 1:
            raise ValueError(f"query_window must be >= 1 or None (user_history), got {query_window}")
        lo, hi = (int(x) for x in hard_window)
        if not 0 <= lo < hi:
            raise ValueError(f"hard_window must be [lo, hi) ranks with 0 <= lo < hi, got {hard_window!r}")
        if use_content is False and not id_embedding:
            raise ValueError("use_content=False and id_embedding=False leave items with no input")
        for name, v in (("n_layers", n_layers), ("fan_out", fan_out), ("n_walks", n_walks),
                        ("walk_length", walk_length), ("user_history", user_history), ("n_easy", n_easy),
                        ("query_items", query_items)):
            if int(v) < (0 if name == "n_layers" else 1):
                raise ValueError(f"{name} must be >= {0 if name == 'n_layers' else 1}, got {v}")
        self.n_layers, self.fan_out = int(n_layers), int(fan_out)
        self.n_walks, self.walk_length, self.restart_p = int(n_walks), int(walk_length), float(restart_p)
        self.user_history, self.loss, self.margin = int(user_history), loss, float(margin)
        self.n_easy, self.query_items, self.query_from = int(n_easy), int(query_items), query_from
        self.query_window = None if query_window is None else int(query_window)
        if steps_per_epoch is not None and int(steps_per_epoch) < 1:
            raise ValueError(f"steps_per_epoch must be >= 1 or None (every pair once), got {steps_per_epoch}")
        self.steps_per_epoch = None if steps_per_epoch is None else int(steps_per_epoch)
        self.sparse_ids = bool(sparse_ids)
        self.easy_epochs, self.hard_per_epoch, self.max_hard = int(easy_epochs), int(hard_per_epoch), int(max_hard)
        self.hard_window, self.use_content, self.id_embedding = [lo, hi], use_content, bool(id_embedding)
        self.init_std, self.infer_batch_size = float(init_std), int(infer_batch_size)
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)
        self._init_text(text_model, text_template, on_empty, text_batch_size)
        self._nbrs = self._nbr_w = self._uses_content = None

    def settings(self):
        return {**super().settings(), **self._text_settings(), "n_layers": self.n_layers, "fan_out": self.fan_out,
                "n_walks": self.n_walks, "walk_length": self.walk_length, "restart_p": self.restart_p,
                "user_history": self.user_history, "loss": self.loss, "margin": self.margin, "n_easy": self.n_easy,
                "query_items": self.query_items, "query_from": self.query_from,
                "query_window": self.query_window, "steps_per_epoch": self.steps_per_epoch,
                "sparse_ids": self.sparse_ids,
                "easy_epochs": self.easy_epochs, "hard_per_epoch": self.hard_per_epoch, "max_hard": self.max_hard,
                "hard_window": self.hard_window,
                "use_content": self.use_content if self._uses_content is None else self._uses_content,
                "id_embedding": self.id_embedding, "hidden_dim": self.hidden_dim, "init_std": self.init_std,
                "infer_batch_size": self.infer_batch_size}

    def curriculum(self, epoch: int) -> int:
        """Hard negatives per positive at 0-based ``epoch`` (:func:`curriculum` with this model's settings)."""
        return curriculum(epoch, self.easy_epochs, self.hard_per_epoch, self.max_hard)

    # -- sampling ----------------------------------------------------------------------
    def _lookup(self, items: torch.Tensor):
        return self._nbrs[items], self._nbr_w[items]

    def sample_graph(self, targets: torch.Tensor) -> ComputationGraph:
        """The computation graph of ``targets`` from the fitted neighbour tables."""
        return computation_graph(targets.to(self.device), self._lookup, self.n_layers)

    def _embed(self, items: torch.Tensor) -> torch.Tensor:
        return self.module(self.sample_graph(items))

    @torch.no_grad()
    def _embed_all(self) -> torch.Tensor:
        was = self.module.training
        self.module.eval()
        n, bs = self.n_items, self.infer_batch_size
        out = torch.cat([self._embed(torch.arange(s, min(s + bs, n), device=self.device))
                         for s in range(0, n, bs)])
        self.module.train(was)
        return out

    def _users_from(self, item_emb: torch.Tensor) -> torch.Tensor:
        return history_means(self._hist, item_emb)

    def _queries(self, users: torch.Tensor, pos: torch.Tensor, gen: torch.Generator,
                 at: torch.Tensor | None = None) -> torch.Tensor:
        """For each pair, ``query_items`` random items (with replacement), ``[B, query_items]``:
        of the user's recent history other than the positive, or (``at``: the pairs'
        positions in the time-ordered histories) of the ``query_window`` items just before it."""
        m = self.query_items
        if at is not None:
            ptr, seq = self._seq
            window = torch.clamp(at - ptr[users], max=self.query_window or self.user_history)[:, None]
            r = torch.rand((len(at), m), generator=gen, device=self.device, dtype=torch.float64)
            return seq[at[:, None] - 1 - torch.minimum((r * window).long(), window - 1)]
        ptr, items = self._hist
        users, pos = users[:, None].expand(-1, m), pos[:, None].expand(-1, m)
        start, deg = ptr[users], ptr[users + 1] - ptr[users]
        q = pos.clone()
        for _ in range(20):
            bad = q == pos
            if not bad.any():
                break
            r = torch.rand(int(bad.sum()), generator=gen, device=self.device, dtype=torch.float64)
            q[bad] = items[start[bad] + torch.minimum((r * deg[bad]).long(), deg[bad] - 1)]
        return q

    def _uniform(self, users: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Uniform items with interactions that ``users`` never interacted with (same shape)."""
        flat = users.reshape(-1)
        def draw(m):
            return self._warm[torch.randint(len(self._warm), (m,), generator=gen, device=self.device)]

        neg = draw(len(flat))
        for _ in range(50):
            bad = self._sampler.is_positive(flat, neg)
            if not bad.any():
                break
            neg[bad] = draw(int(bad.sum()))
        return neg.view(users.shape)

    def _hard(self, z: torch.Tensor, q: torch.Tensor, users: torch.Tensor, n_hard: int,
              gen: torch.Generator) -> torch.Tensor:
        """``n_hard`` items per query from ranks ``hard_window`` of ``mean(z[q]) . z``, not the user's."""
        lo, hi = self.hard_window[0], min(self.hard_window[1], len(self._warm))
        u = users[:, None].expand(-1, n_hard)
        if hi <= lo:
            return self._uniform(u, gen)
        window = topk_chunked(z[q].mean(1), z, self._is_warm, hi)[:, lo:hi]
        def pick(shape):
            return torch.randint(hi - lo, shape, generator=gen, device=self.device)

        neg = window.gather(1, pick(u.shape))
        for _ in range(10):
            bad = self._sampler.is_positive(u, neg)
            if not bad.any():
                return neg
            rows = bad.nonzero(as_tuple=True)[0]
            neg[bad] = window[rows, pick(rows.shape)]
        bad = self._sampler.is_positive(u, neg)
        neg[bad] = self._uniform(u[bad], gen)
        return neg

    # -- training ----------------------------------------------------------------------
    def fit(self, train: Interactions, valid: Interactions | None = None, *, item_embeddings=None,
            encoder=None, dist: DistContext | None = None) -> "PinSage":
        """Sample neighbourhoods, then train on (query, positive, negatives) item triples.

        Args:
            item_embeddings: precomputed content embeddings ``[n_items, d]`` (skips encoding).
            encoder: encoder object for the item strings; default :meth:`text_encoder`.
            dist: this process's place in a distributed run
                (:func:`hybridrec.train.distributed.context`); None: a single process.
        """
        gen = self.prepare(train, item_embeddings=item_embeddings, encoder=encoder)
        self.history = self._train(train, valid, gen, dist)
        self._cache_embeddings()
        return self

    def prepare(self, train: Interactions, *, item_embeddings=None, encoder=None) -> torch.Generator:
        """Everything ``fit`` does before the first step: content inputs, neighbour tables
        (random walks from every item), recent histories, the negative sampler and a fresh
        module. Returns the seeded generator training continues with."""
        self._remember(train)
        use = self.use_content
        if use is None:
            use = item_embeddings is not None or train.item_table is not None
        elif not use and item_embeddings is not None:
            raise ValueError("item_embeddings given but use_content=False")
        self._uses_content = bool(use)
        self._content = self._content_for(train, item_embeddings, encoder).to(self.device) if use else None
        torch.manual_seed(self.seed)
        gen = torch.Generator(device=self.device).manual_seed(self.seed)
        csr = train.to_csr()
        t0 = time.perf_counter()
        self._nbrs, self._nbr_w = neighbour_table(WalkGraph(csr, self.device), self.n_walks, self.walk_length,
                                                  self.restart_p, self.fan_out, gen,
                                                  progress=self.train_config.progress)
        self.walk_seconds = time.perf_counter() - t0
        log.info("PinSage neighbour tables of %d items in %.1fs", train.n_items, self.walk_seconds)
        counts = torch.as_tensor(train.item_counts(), device=self.device)
        self._is_warm = counts > 0
        self._warm = torch.nonzero(self._is_warm).squeeze(1)
        if self.query_from == "preceding":  # whole histories in time order: queries precede positives
            self._seq = tuple(t.to(self.device) for t in recent_items(train, max(1, len(train))))
            self._hist = history_tail(self._seq, self.user_history)
        else:
            self._seq = None
            self._hist = tuple(t.to(self.device) for t in recent_items(train, self.user_history))
        self._sampler = UniformNegativeSampler(csr, device=self.device)
        self.module = self.build_module(train).to(self.device)
        return gen

    def build_module(self, train: Interactions) -> PinSageModule:
        """The module for ``train``: id embeddings for its items with interactions."""
        has_id = torch.as_tensor(train.item_counts() > 0, dtype=torch.float32) if self.id_embedding else None
        return PinSageModule(train.n_items, self.dim, self.n_layers, self._content, has_id, self.init_std,
                             self._hidden, self.sparse_ids)

    @property
    def _hidden(self) -> int:
        return self.hidden_dim or max(self.dim, 64)

    def _pairs(self, train: Interactions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Training (user, item) pairs that have an item to query with, and (``query_from=
        "preceding"``) each pair's position in the time-ordered histories (else None)."""
        if self._seq is not None:  # every distinct item but each user's first
            ptr, items = self._seq
            owner = torch.repeat_interleave(torch.arange(len(ptr) - 1, device=self.device), ptr[1:] - ptr[:-1])
            at = torch.arange(len(items), device=self.device)
            keep = at > ptr[owner]
            return owner[keep], items[keep], at[keep]
        ptr = self._hist[0]
        n_hist = (ptr[1:] - ptr[:-1]).cpu().numpy()
        keep = n_hist[train.users] >= 2
        return (torch.as_tensor(train.users[keep], device=self.device),
                torch.as_tensor(train.items[keep], device=self.device), None)

    def _train(self, train: Interactions, valid: Interactions | None, gen: torch.Generator,
               dist: DistContext | None = None) -> TrainHistory:
        """Train the prepared module in :func:`~hybridrec.train.fit_loop`, continuing ``gen``;
        with ``dist``, each process trains on its share of every batch (DDP)."""
        cfg = self.train_config
        users_all, items_all, at_all = self._pairs(train)
        if len(users_all) == 0:
            raise ValueError(f"no user of {train.name!r} has two training items: PinSage has nothing to train on")
        if dist is not None and self.sparse_ids:
            raise ValueError("sparse_ids=True cannot train data-parallel (DDP needs dense gradients on NCCL); "
                             "set model.params.sparse_ids=false for a distributed run")
        ids = [] if self.module.item is None or not self.sparse_ids else [self.module.item.weight]
        dense = [p for p in self.module.parameters() if all(p is not q for q in ids)]
        opts = [torch.optim.Adam(dense, lr=cfg.lr)] + ([torch.optim.SparseAdam(ids, lr=cfg.lr)] if ids else [])
        net = self.module
        if dist is not None:  # DDP: same sampling everywhere, one share of each batch per process
            net, *opts = dist.accelerator.prepare(self.module, *opts)
        world = 1 if dist is None else dist.world_size
        n, bs = len(users_all), cfg.batch_size

        def run_epoch(epoch: int) -> dict:
            for opt in opts:  # the train section's schedule (TrainConfig.lr_at)
                for group in opt.param_groups:
                    group["lr"] = cfg.lr_at(epoch)
            n_hard = self.curriculum(epoch - 1)
            z_all = self._embed_all() if n_hard else None
            perm = torch.randperm(n, generator=gen, device=self.device)
            total, max_nodes, n_mine, n_seen, seen = torch.zeros((), device=self.device), 0, 0, 0, []
            for s in range(0, n, bs)[:self.steps_per_epoch]:
                idx = perm[s:s + bs]
                u, p = users_all[idx], items_all[idx]
                q = self._queries(u, p, gen, None if at_all is None else at_all[idx])
                neg = self._uniform(u[:, None].expand(-1, self.n_easy), gen)
                if n_hard:
                    neg = torch.cat([neg, self._hard(z_all, q, u, n_hard, gen)], 1)
                if dist is not None:
                    mine = dist.share(len(u))
                    u, p, q, neg = u[mine], p[mine], q[mine], neg[mine]
                    if epoch == 1:
                        seen.append(idx[mine])
                n_mine += len(u)
                targets = torch.cat([q.reshape(-1), p, neg.reshape(-1)])
                graph = self.sample_graph(targets)
                max_nodes = max(max_nodes, graph.n_nodes)
                z = net(graph)
                zq, z = z[:q.numel()].view(*q.shape, -1).mean(1), z[q.numel():]
                zp, zn = z[:len(u)], z[len(u):].view(len(u), neg.shape[1], z.shape[1])
                pos_s = (zq * zp).sum(-1, keepdim=True).expand(-1, zn.shape[1])
                neg_s = (zq[:, None] * zn).sum(-1)
                # sums over the share / batch size: DDP's mean over processes is the batch mean
                scale = world / len(idx)
                if self.loss == "bpr":
                    loss = -F.logsigmoid(pos_s - neg_s).mean(1).sum() * scale
                else:
                    loss = F.relu(neg_s - pos_s + self.margin).mean(1).sum() * scale
                if cfg.l2 > 0:  # on every target's layer-0 vector, each distinct item computed once
                    uniq, counts = torch.unique(targets, return_counts=True)
                    h0 = self.module.inputs(uniq)
                    loss = loss + cfg.l2 * (counts[:, None] * h0.pow(2)).sum() / 2 * scale
                for opt in opts:
                    opt.zero_grad(set_to_none=True)
                if dist is None:
                    loss.backward()
                else:
                    dist.accelerator.backward(loss)
                for opt in opts:
                    opt.step()
                total += loss.detach() * len(idx) / world
                n_seen += len(idx)
            if dist is not None:
                total = dist.accelerator.reduce(total, reduction="sum")
                if epoch == 1:
                    self.trained_pairs = torch.cat(seen).cpu() if seen else torch.empty(0, dtype=torch.long)
            return {"loss": float(total) / n_seen, "n_hard": n_hard, "max_nodes": max_nodes, "pairs": n_mine}

        def embed() -> tuple[torch.Tensor, torch.Tensor]:
            items = self._embed_all()
            return self._users_from(items), items

        attach(optimizers=opts, generators={"sampling": gen})  # checkpoints (if a run keeps them) resume exactly
        return fit_loop(self.module, run_epoch, cfg,
                        validate=ranking_validator(embed, train, valid, cfg, batch_size=self.eval_batch_size),
                        desc="train PinSage", show_progress=dist is None or dist.is_main,
                        postfix=lambda row: {"loss": f"{row['loss']:.4f}", "n_hard": row["n_hard"]})

    @torch.no_grad()
    def _cache_embeddings(self) -> None:
        self.module.eval()
        self._item_emb = self._embed_all()
        self._user_emb = self._users_from(self._item_emb)

    # -- content-aware scoring ---------------------------------------------------------
    def _item_vectors(self, content: torch.Tensor) -> torch.Tensor:
        self._check_content()
        with torch.no_grad():
            return self.module.embed_isolated(content.to(self.device).float())

    def _user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self._user_emb[users.to(self._user_emb.device)]

    def score_item_sets(self, item_sets) -> torch.Tensor:
        """A new user is what a training user is: the mean final embedding of their
        ``user_history`` last distinct liked items (the list read oldest to newest)."""
        users = []
        for items in item_sets:
            recent = list(dict.fromkeys(int(i) for i in reversed(items)))[:self.user_history]
            users.append(self._item_emb[torch.as_tensor(recent, device=self._item_emb.device)].mean(0))
        return torch.stack(users) @ self._item_emb.T

    def _check_content(self) -> None:
        self._check_fitted()
        if self._content is None:
            raise ValueError("this PinSage model was fitted without item content (use_content=False or no item "
                             "text), so it cannot embed new items; fit it with content to score new items")

    def new_items(self, items, encoder=None, **kwargs):
        self._check_content()
        return super().new_items(items, encoder, **kwargs)

    # -- device and persistence --------------------------------------------------------
    def to(self, device) -> "PinSage":
        super().to(device)
        if self._nbrs is not None:
            self._nbrs, self._nbr_w = self._nbrs.to(self.device), self._nbr_w.to(self.device)
        if self._content is not None:
            self._content = self._content.to(self.device)
        return self

    def _state(self):
        settings, tensors = super()._state()
        module = {f"module.{k}": v for k, v in self.module.state_dict().items()}
        return settings, {**tensors, **module, "neighbours": self._nbrs, "neighbour_weights": self._nbr_w}

    def _restore(self, settings, tensors):
        super()._restore(settings, tensors)
        state = {k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")}
        content, has_id = state.get("content"), state.get("has_id")
        self.module = PinSageModule(self.n_items, self.dim, self.n_layers, content, has_id, self.init_std,
                                    self._hidden)
        self.module.load_state_dict(state)
        self.module.to(self.device).eval()
        self._content = None if content is None else self.module.content
        self._nbrs = tensors["neighbours"].to(self.device)
        self._nbr_w = tensors["neighbour_weights"].to(self.device)
