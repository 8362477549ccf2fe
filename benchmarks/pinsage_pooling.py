"""PinSage's neighbour pooling: gathering ``[n, T, d]`` vs ``F.embedding_bag`` vs a CSR product.

The three compute the same importance-weighted mean of neighbour messages; this times each
forward + backward (gradient into the messages) on a computation-graph layer of ``--n``
nodes with ``--t`` neighbours among ``--sources`` source nodes (10% of slots empty), and
checks they agree. ``PinSageConv`` uses ``embedding_bag``.

Usage::

    python benchmarks/pinsage_pooling.py            # 30k nodes, T=10, 36k sources, 64 dims
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hybridrec.graph.adjacency import SpMM  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--sources", type=int, default=36_000)
    ap.add_argument("--t", type=int, default=10)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    n, ns, t = args.n, args.sources, args.t
    idx = torch.randint(ns, (n, t))
    idx[torch.rand(n, t) < 0.1] = -1
    w = torch.where(idx >= 0, torch.rand(n, t), torch.zeros(n, t))
    w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
    msg = torch.randn(ns, args.dim, requires_grad=True)

    def gather():
        return (w.unsqueeze(-1) * msg[idx.clamp_min(0)]).sum(1)

    def embedding_bag():
        return F.embedding_bag(idx.clamp_min(0), msg, mode="sum", per_sample_weights=w)

    def csr_product():  # includes building A and A^T for the layer, as a step would
        valid = idx >= 0
        rows, cols, vals = torch.arange(n).unsqueeze(1).expand(-1, t)[valid], idx[valid], w[valid]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            a = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, ns)).coalesce().to_sparse_csr()
            a_t = torch.sparse_coo_tensor(torch.stack([cols, rows]), vals, (ns, n)).coalesce().to_sparse_csr()
        return SpMM.apply(a, a_t, msg)

    ref = gather().detach()
    for f in (gather, embedding_bag, csr_product):
        diff = (f().detach() - ref).abs().max().item()
        f()  # warm-up
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            msg.grad = None
            f().pow(2).sum().backward()
        ms = (time.perf_counter() - t0) / args.repeats * 1000
        print(f"{f.__name__:>14}: {ms:7.1f} ms forward + backward, max difference from gather {diff:.1e}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
