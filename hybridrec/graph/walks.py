"""Importance-based neighbourhoods by random walks with restart, and sampled computation graphs.

PinSage (Ying et al. 2018, https://arxiv.org/abs/1806.01973) defines an item's neighbours
not as its graph neighbours but as the ``T`` items most visited by short random walks with
restart from it on the item-user-item graph; the visit counts, normalised, weigh them in
the convolution. Each walk hop goes item -> a uniformly random user of the item -> a
uniformly random item of that user; after each hop the walker jumps back to its start
item with probability ``restart_p``.

Everything here is vectorised over all the walkers of a batch of start items at once
(torch tensors, the CSR arrays of the users x items matrix and of its transpose), seeded by
a ``torch.Generator``, and runs on whatever device the graph lives on.

:func:`computation_graph` builds the mini-batch computation graph of a ``K``-layer model:
the targets, their neighbours, the neighbours' neighbours, ..., each level deduplicated, so
its size is bounded by ``targets x (1 + T + ... + T^K)``, whatever the size of the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from ..support.progress import progress_bar

class WalkGraph:
    """The item-user-item graph as two CSR index arrays (items -> users, users -> items).

    Args:
        csr: users x items matrix of training interactions (values are ignored; a
            duplicated interaction counts once).
        device: where the index arrays (and so the walks) live.
    """

    def __init__(self, csr: sp.csr_matrix, device: str | torch.device = "cpu"):
        r = sp.csr_matrix(csr, dtype=np.float32, copy=True)
        r.sum_duplicates()
        self.n_users, self.n_items = r.shape
        rt = r.T.tocsr()
        self.device = torch.device(device)
        as_t = lambda a: torch.as_tensor(a.astype(np.int64), device=self.device)  # noqa: E731
        self.u_ptr, self.u_idx = as_t(r.indptr), as_t(r.indices)  # user -> items
        self.i_ptr, self.i_idx = as_t(rt.indptr), as_t(rt.indices)  # item -> users

    @property
    def item_degree(self) -> torch.Tensor:
        """Number of distinct users of each item, ``[n_items]``."""
        return self.i_ptr[1:] - self.i_ptr[:-1]


def _step(ptr: torch.Tensor, idx: torch.Tensor, nodes: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A uniformly random CSR neighbour of each of ``nodes`` (every one has degree >= 1)."""
    start, deg = ptr[nodes], ptr[nodes + 1] - ptr[nodes]
    r = torch.rand(nodes.shape, generator=gen, device=nodes.device, dtype=torch.float64)
    off = torch.minimum((r * deg).long(), deg - 1)
    return idx[start + off]


def importance_neighbours(graph: WalkGraph | sp.csr_matrix, items, n_walks: int = 50, walk_length: int = 4,
                          restart_p: float = 0.3, top_t: int = 10,
                          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The ``top_t`` most visited items of random walks with restart from each of ``items``.

    From each start item ``s``, ``n_walks`` walkers each make ``walk_length`` item-to-item
    hops (item -> random user of it -> random item of that user); after every hop a walker
    returns to ``s`` with probability ``restart_p``. Visits of items other than ``s`` are
    counted, and the ``top_t`` most visited (ties: lower item index first) are kept with
    importance weights

    .. math:: \alpha_{sv} = \frac{c_{sv}}{\sum_{v' \in N(s)} c_{sv'}}

    (:math:`c_{sv}` the visit count; the weights of a row sum to 1).

    Args:
        graph: a :class:`WalkGraph`, or the users x items CSR matrix to build one from.
        items: start item indices, ``[B]`` (tensor, array or list).
        n_walks, walk_length, restart_p, top_t: as above.
        generator: seeds the walks (a fresh one seeded 0 when None); same seed, same output.

    Returns:
        ``(neighbours long [B, top_t], weights float32 [B, top_t])``; rows with fewer than
        ``top_t`` visited items are padded with ``-1`` and weight 0 (an item with no
        interactions gets no neighbours at all).
    """
    g = graph if isinstance(graph, WalkGraph) else WalkGraph(graph)
    if walk_length < 1 or n_walks < 1 or top_t < 1 or not 0 <= restart_p < 1:
        raise ValueError(f"need n_walks >= 1, walk_length >= 1, top_t >= 1 and 0 <= restart_p < 1; got "
                         f"{n_walks}, {walk_length}, {top_t}, {restart_p}")
    if generator is None:
        generator = torch.Generator(device=g.device).manual_seed(0)
    items = torch.as_tensor(items, dtype=torch.long, device=g.device).reshape(-1)
    b = len(items)
    out_n = torch.full((b, top_t), -1, dtype=torch.long, device=g.device)
    out_w = torch.zeros((b, top_t), dtype=torch.float32, device=g.device)
    if b and (int(items.min()) < 0 or int(items.max()) >= g.n_items):
        raise IndexError(f"item indices must lie in [0, {g.n_items}); got {int(items.min())}..{int(items.max())}")
    alive = torch.nonzero(g.item_degree[items] > 0).squeeze(1)  # isolated items: no walks
    if len(alive) == 0:
        return out_n, out_w
    walker_row = alive.repeat_interleave(n_walks)  # which output row each walker belongs to
    home = items[walker_row]
    pos = home.clone()
    visits = []
    for _ in range(walk_length):
        pos = _step(g.u_ptr, g.u_idx, _step(g.i_ptr, g.i_idx, pos, generator), generator)
        visits.append(walker_row * g.n_items + pos)
        back = torch.rand(pos.shape, generator=generator, device=g.device) < restart_p
        pos = torch.where(back, home, pos)
    keys = torch.cat(visits)
    keys = keys[keys % g.n_items != items[keys // g.n_items]]  # the start item is not its own neighbour
    keys, counts = torch.unique(keys, return_counts=True)  # sorted by (row, item)
    row, item = keys // g.n_items, keys % g.n_items
    order = torch.sort(-counts, stable=True).indices  # by count, ties keep item order
    order = order[torch.sort(row[order], stable=True).indices]  # then grouped by row
    row, item, counts = row[order], item[order], counts[order]
    first = torch.searchsorted(row, row, side="left")  # index where each row's group starts
    rank = torch.arange(len(row), device=g.device) - first
    keep = rank < top_t
    row, item, counts, rank = row[keep], item[keep], counts[keep], rank[keep]
    out_n[row, rank] = item
    out_w[row, rank] = counts.float()
    total = out_w.sum(1, keepdim=True)
    out_w = torch.where(total > 0, out_w / total.clamp_min(1e-12), out_w)
    return out_n, out_w


def neighbour_table(graph: WalkGraph | sp.csr_matrix, n_walks: int = 50, walk_length: int = 4,
                    restart_p: float = 0.3, top_t: int = 10, generator: torch.Generator | None = None,
                    batch_size: int | None = None, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`importance_neighbours` of every item, computed in batches of start items
    (``progress``: a progress bar over the batches).

    ``batch_size`` start items per batch; default about ``2**22`` walker steps per batch,
    which bounds memory whatever the catalogue size.

    Returns:
        ``(neighbours long [n_items, top_t], weights float32 [n_items, top_t])``.
    """
    g = graph if isinstance(graph, WalkGraph) else WalkGraph(graph)
    if generator is None:
        generator = torch.Generator(device=g.device).manual_seed(0)
    bs = batch_size or max(1, 2 ** 22 // (n_walks * walk_length))
    parts = [importance_neighbours(g, torch.arange(s, min(s + bs, g.n_items), device=g.device),
                                   n_walks, walk_length, restart_p, top_t, generator)
             for s in progress_bar(range(0, g.n_items, bs), desc="random walks", unit="batch", enabled=progress,
                           leave=False)]
    if not parts:
        return torch.empty((0, top_t), dtype=torch.long), torch.empty((0, top_t))
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@dataclass
class ComputationGraph:
    """The sampled computation graph of a mini-batch, from the input layer to the targets.

    Attributes:
        nodes: item indices of the input layer (layer 0), sorted and unique; every node of
            every later layer is among them.
        layers: one ``(self_index, neighbour_index, weights)`` per convolution, in order:
            for the ``n_l`` nodes that layer ``l`` outputs, ``self_index [n_l]`` and
            ``neighbour_index [n_l, T]`` are positions in the previous layer's node list
            (``-1``: no neighbour, weight 0) and ``weights [n_l, T]`` their importances.
        level_nodes: the item indices each layer outputs (the last are the unique targets).
        target_index: position of each requested target (duplicates allowed) in the last
            layer's output.
    """

    nodes: torch.Tensor
    layers: list
    level_nodes: list
    target_index: torch.Tensor

    @property
    def n_nodes(self) -> int:
        """Number of distinct nodes whose input features the batch needs."""
        return len(self.nodes)


Neighbours = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def computation_graph(targets: torch.Tensor, neighbours: Neighbours, n_layers: int) -> ComputationGraph:
    """Sample the ``n_layers``-hop computation graph of ``targets``.

    Starting from the unique targets, each hop asks ``neighbours(nodes) -> (nbrs [n, T],
    weights [n, T])`` (e.g. a lookup in a :func:`neighbour_table`, or live
    :func:`importance_neighbours`) and adds the new nodes; each level is deduplicated, so
    the input layer has at most ``len(targets) * (1 + T + ... + T^n_layers)`` nodes.
    """
    targets = torch.as_tensor(targets, dtype=torch.long)
    cur, target_index = torch.unique(targets, return_inverse=True)
    levels, hops = [cur], []
    for _ in range(n_layers):
        nbrs, w = neighbours(cur)
        prev = torch.unique(torch.cat([cur, nbrs[nbrs >= 0]]))
        self_idx = torch.searchsorted(prev, cur)
        nbr_idx = torch.where(nbrs >= 0, torch.searchsorted(prev, nbrs.clamp_min(0).contiguous()), -1)
        hops.append((self_idx, nbr_idx, torch.where(nbrs >= 0, w, torch.zeros_like(w))))
        levels.append(prev)
        cur = prev
    return ComputationGraph(nodes=levels[-1], layers=hops[::-1], level_nodes=levels[::-1][1:],
                            target_index=target_index)
