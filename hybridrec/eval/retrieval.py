"""Stage 1 of the two-stage pipeline: top-M candidate retrieval by inner product.

An :class:`ItemIndex` holds item vectors and answers "the M items with the highest
:math:`e_u \\cdot e_i` for each query user", excluding items the user already has. It uses
faiss when it is installed (``pip install faiss-cpu``): ``exact`` (``IndexFlatIP``, brute
force in optimised BLAS) or ``hnsw`` (``IndexHNSWFlat`` over inner product, approximate,
sub-linear per query); without faiss it falls back to an exact batched ``torch.topk``.

Excluding seen items: the index is asked for ``M + max_seen`` neighbours (bounded by the
catalogue) and the user's seen items are dropped afterwards, so every user gets ``M``
unseen items whenever the catalogue has that many.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch

log = logging.getLogger("hybridrec.eval.retrieval")
KINDS = ("exact", "hnsw", "torch")


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class ItemIndex:
    """Maximum-inner-product search over item vectors.

    Args:
        item_vectors: ``[n_items, d]`` float tensor or array.
        kind: ``"exact"`` (faiss flat inner product), ``"hnsw"`` (faiss HNSW, approximate;
            ``hnsw_m`` links per node, ``ef_search`` search depth) or ``"torch"`` (exact,
            no faiss). ``exact`` and ``hnsw`` fall back to ``torch`` with a warning when
            faiss is not installed.
        batch_size: queries per ``torch`` batch (bounds memory: batch x n_items floats).
    """

    def __init__(self, item_vectors, kind: str = "exact", *, hnsw_m: int = 32, ef_search: int = 128,
                 ef_construction: int = 200, batch_size: int = 1024):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        x = item_vectors.detach().float().cpu().numpy() if torch.is_tensor(item_vectors) \
            else np.asarray(item_vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"item_vectors must be a non-empty [n_items, d] matrix, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"item_vectors row {int(np.flatnonzero(~np.isfinite(x).all(1))[0])} is not finite")
        self.items = np.ascontiguousarray(x, dtype=np.float32)
        self.batch_size = int(batch_size)
        if kind != "torch" and not faiss_available():
            log.warning("faiss is not installed (pip install faiss-cpu): using exact torch search instead of %r", kind)
            kind = "torch"
        self.kind = kind
        self._index = None
        if kind != "torch":
            import faiss

            d = x.shape[1]
            if kind == "exact":
                self._index = faiss.IndexFlatIP(d)
            else:
                self._index = faiss.IndexHNSWFlat(d, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
                self._index.hnsw.efConstruction = int(ef_construction)
                self._index.hnsw.efSearch = int(ef_search)
            self._index.add(self.items)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def search(self, queries, m: int, exclude: sp.csr_matrix | None = None,
               rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``m`` items per query, best first: ``(indices [n_q, m], scores [n_q, m])``.

        Args:
            queries: ``[n_q, d]`` query (user) vectors.
            m: items per query; at most the catalogue size.
            exclude: CSR ``[n_users, n_items]`` of items never to return (training items).
            rows: row of ``exclude`` for each query (default ``0..n_q-1``).

        Queries with fewer than ``m`` unexcluded items get ``-1`` / ``-inf`` padding.
        """
        q = queries.detach().float().cpu().numpy() if torch.is_tensor(queries) \
            else np.asarray(queries, dtype=np.float32)
        q = np.ascontiguousarray(q, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.items.shape[1]:
            raise ValueError(f"queries must be [n, {self.items.shape[1]}], got shape {q.shape}")
        if not 1 <= m <= self.n_items:
            raise ValueError(f"m={m}, but the index holds {self.n_items} items; choose 1 <= m <= {self.n_items}")
        rows = np.arange(len(q)) if rows is None else np.asarray(rows)
        extra = 0
        if exclude is not None:
            extra = int(np.diff(exclude.indptr)[rows].max()) if len(rows) else 0
        k = min(m + extra, self.n_items)
        idx, val = self._raw_search(q, k)
        if exclude is None:
            return idx[:, :m], val[:, :m]
        out_i = np.full((len(q), m), -1, dtype=np.int64)
        out_v = np.full((len(q), m), -np.inf, dtype=np.float32)
        for r, row in enumerate(rows):
            seen = exclude.indices[exclude.indptr[row]:exclude.indptr[row + 1]]
            keep = (idx[r] >= 0) & ~np.isin(idx[r], seen)
            take = idx[r][keep][:m]
            out_i[r, :len(take)], out_v[r, :len(take)] = take, val[r][keep][:m]
        return out_i, out_v

    def _raw_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._index is not None:
            val, idx = self._index.search(q, k)
            return idx.astype(np.int64), val
        items = torch.from_numpy(self.items)
        out_i, out_v = [], []
        for b in range(0, len(q), self.batch_size):
            top = torch.topk(torch.from_numpy(q[b:b + self.batch_size]) @ items.T, k, dim=1)
            out_i.append(top.indices.numpy())
            out_v.append(top.values.numpy())
        return np.concatenate(out_i), np.concatenate(out_v)


def recall_at_m(candidates: np.ndarray, targets: list[np.ndarray]) -> float:
    """Mean over queries of |targets in candidates| / |targets| (queries without targets skipped)."""
    vals = [np.isin(t, c).mean() for c, t in zip(candidates, targets) if len(t)]
    return float(np.mean(vals)) if vals else float("nan")
