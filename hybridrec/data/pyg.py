"""PyTorch Geometric interop: an :class:`Interactions` as a user-item ``HeteroData`` graph.

``to_pyg`` gives node types ``"user"`` and ``"item"`` (``num_nodes`` set, external ids kept
as the lists ``ids``, item text as one list per text field: ``data["item"].title``, ...)
and the edge type ``("user", "interacts", "item")`` with ``edge_index [2, n]`` in row order,
plus its reverse ``("item", "rev_interacts", "user")`` as ``T.ToUndirected`` would add it.
Timestamps, ratings and per-row ``meta`` arrays (a loader's ``fold``) are edge attributes
``time``, ``rating`` and ``fold`` on both. ``from_pyg`` inverts it exactly. hybridrec's
models do not need PyG; this is for handing the data to PyG code and back.
``torch_geometric`` is imported only here, inside the functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataError
from .interactions import ROW_META_KEYS, TEXT_FIELDS, Interactions
from .vocab import Vocabulary

#: The interaction edge type and its reverse.
EDGE = ("user", "interacts", "item")
REV_EDGE = ("item", "rev_interacts", "user")
_EDGE_ATTRS = {"time": "timestamps", "rating": "ratings"}


def to_pyg(data: Interactions):
    """The interactions as a ``torch_geometric.data.HeteroData`` graph (see the module).

    Args:
        data: the interactions.

    Returns:
        ``HeteroData`` with ``data["user"].num_nodes == data.n_users``, ``ids`` lists,
        ``data[EDGE].edge_index`` (``long [2, n]``: user row, item row) and its reverse,
        ``time`` (``long [n]``), ``rating`` (``float32 [n]``) when present, item text lists
        when ``data.item_table`` is set, and the graph-level ``name``.
    """
    import torch

    graph = _hetero_data()()
    graph.name = data.name
    for node, vocab in (("user", data.user_vocab), ("item", data.item_vocab)):
        graph[node].num_nodes = len(vocab)
        graph[node].ids = vocab.to_list()
    if data.item_table is not None:
        for col in TEXT_FIELDS:
            if col in data.item_table.columns:
                graph["item"][col] = data.item_table[col].astype(str).tolist()
    edge_index = torch.from_numpy(np.stack([data.users, data.items]))
    graph[EDGE].edge_index = edge_index
    graph[REV_EDGE].edge_index = edge_index.flip(0)
    attrs = {attr: getattr(data, field) for attr, field in _EDGE_ATTRS.items()}
    attrs.update({k: data.meta.get(k) for k in ROW_META_KEYS})
    for attr, values in attrs.items():
        if values is not None:
            tensor = torch.from_numpy(np.array(values))  # a copy: no aliasing of `data`
            graph[EDGE][attr] = tensor
            graph[REV_EDGE][attr] = tensor
    return graph


def from_pyg(graph, *, name: str | None = None, edge_type: tuple[str, str, str] = EDGE
             ) -> Interactions:
    """An :class:`Interactions` from a user-item ``HeteroData`` (the inverse of :func:`to_pyg`).

    Args:
        graph: ``HeteroData`` with ``"user"`` and ``"item"`` nodes and ``edge_type``
            edges. Without ``ids`` lists, external ids are the node indices (``"0"``,
            ``"1"``, ...); without ``num_nodes``, PyG's inferred counts are used.
        name: the data set's name (default: the graph's ``name``, else ``"pyg"``).
        edge_type: the interaction edges (``edge_index`` row 0 users, row 1 items).

    Raises:
        DataError: a missing node or edge type, an ``edge_index`` that is not ``[2, n]``
            integers inside the node ranges, or ids/text/edge attributes of the wrong length.
    """
    if not isinstance(graph, _hetero_data()):
        raise DataError(f"expected a torch_geometric HeteroData, not {type(graph).__name__}",
                        "from_pyg")
    for node in ("user", "item"):
        if node not in graph.node_types:
            raise DataError(f"no {node!r} node type; node types are {graph.node_types}",
                            "from_pyg")
    if edge_type not in graph.edge_types or "edge_index" not in graph[edge_type]:
        raise DataError(f"no edge_index for edge type {edge_type}; edge types are "
                        f"{graph.edge_types}", "from_pyg")
    vocabs = {node: _vocab(graph[node], node) for node in ("user", "item")}
    users, items = _edges(graph[edge_type].edge_index, edge_type, vocabs)
    store = graph[edge_type]
    n = len(users)
    arrays = {field: _edge_attr(store, attr, n, edge_type) for attr, field in _EDGE_ATTRS.items()}
    meta = {k: v for k in ROW_META_KEYS
            if (v := _edge_attr(store, k, n, edge_type)) is not None}
    return Interactions(
        users=users, items=items, user_vocab=vocabs["user"], item_vocab=vocabs["item"],
        timestamps=arrays["timestamps"], ratings=arrays["ratings"],
        item_table=_item_table(graph["item"], len(vocabs["item"])),
        name=name or getattr(graph, "name", None) or "pyg", meta=meta,
    )


def _hetero_data():
    try:
        from torch_geometric.data import HeteroData
    except ImportError as err:
        raise ImportError(f"PyG interop needs torch_geometric ({err}); "
                          "pip install torch-geometric (the hybridrec[pyg] extra)") from err
    return HeteroData


def _vocab(store, node: str) -> Vocabulary:
    n = store.num_nodes
    ids = store["ids"] if "ids" in store else None
    if n is None:
        if ids is None:
            raise DataError(f"the {node!r} nodes have neither num_nodes nor ids", "from_pyg")
        n = len(ids)
    if ids is None:
        ids = range(int(n))
    if len(ids) != n:
        raise DataError(f"{node!r} has {len(ids)} ids but {n} nodes", "from_pyg")
    try:
        return Vocabulary(ids, kind=node)
    except ValueError as err:
        raise DataError(str(err), "from_pyg") from None


def _edges(edge_index, edge_type, vocabs) -> tuple[np.ndarray, np.ndarray]:
    ei = edge_index.detach().cpu()
    if ei.dim() != 2 or ei.shape[0] != 2 or ei.dtype.is_floating_point or ei.dtype.is_complex:
        raise DataError(f"edge_index of {edge_type} must be an integer tensor [2, n], got "
                        f"{ei.dtype} {tuple(ei.shape)}", "from_pyg")
    users, items = ei.numpy().astype(np.int64)
    for what, idx in (("user", users), ("item", items)):
        bad = (idx < 0) | (idx >= len(vocabs[what]))
        if bad.any():
            col = int(np.flatnonzero(bad)[0])
            raise DataError(f"edge {col} of {edge_type} names {what} {int(idx[col])}, outside "
                            f"0..{len(vocabs[what]) - 1}", "from_pyg")
    return users, items


def _edge_attr(store, attr: str, n: int, edge_type) -> np.ndarray | None:
    if attr not in store:
        return None
    value = store[attr]
    arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    if arr.shape != (n,):
        raise DataError(f"edge attribute {attr!r} of {edge_type} has shape {arr.shape}, "
                        f"expected ({n},)", "from_pyg")
    return arr


def _item_table(store, n_items: int) -> pd.DataFrame | None:
    present = [c for c in TEXT_FIELDS if c in store]
    if not present:
        return None
    table = pd.DataFrame(index=pd.RangeIndex(n_items))
    for col in TEXT_FIELDS:
        values = list(store[col]) if col in present else [""] * n_items
        if len(values) != n_items:
            raise DataError(f"item text {col!r} has {len(values)} entries for {n_items} items",
                            "from_pyg")
        table[col] = pd.Series(values, dtype=object).astype(str)  # as the loaders build it
    return table
