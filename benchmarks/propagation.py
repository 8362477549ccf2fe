"""One propagation hop on Gowalla: torch's default CSR backward against a prebuilt transpose.

Times ``R~ @ X`` forward and backward (64 dims, 810k edges) three ways: torch's CSR
product with its default backward, hybridrec's ``BipartiteGraph.users_from_items`` (whose
backward is a product with the transpose built once), and torch's COO ``sparse.mm``.

Usage::

    python benchmarks/propagation.py [--dim 64] [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from hybridrec.data import load_dataset, make_split
from hybridrec.graph import BipartiteGraph

REPO = Path(__file__).resolve().parents[1]


def timed(fn, repeat: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--data", default=os.environ.get("HYBRIDREC_DATA", str(REPO.parent / "shared" / "datasets")))
    args = p.parse_args()
    split = make_split(load_dataset("gowalla", path=f"{args.data}/gowalla"), "given")
    g = BipartiteGraph(split.train.to_csr())
    coo = g.r.to_sparse_coo().coalesce()
    x = torch.randn(g.n_items, args.dim, requires_grad=True)

    def default_csr():
        (g.r @ x).sum().backward()

    def prebuilt_transpose():
        g.users_from_items(x).sum().backward()

    def coo_mm():
        torch.sparse.mm(coo, x).sum().backward()

    with torch.no_grad():
        fwd = timed(lambda: g.r @ x, args.repeat)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; Gowalla R~ {g.n_users}x{g.n_items}, {g.nnz} edges, dim {args.dim}")
    print(f"forward only (CSR)                       {fwd:7.1f} ms")
    for name, fn in [("forward+backward, torch default CSR", default_csr),
                     ("forward+backward, prebuilt transpose", prebuilt_transpose),
                     ("forward+backward, torch COO sparse.mm", coo_mm)]:
        print(f"{name:40s} {timed(fn, args.repeat):7.1f} ms")


if __name__ == "__main__":
    main()
