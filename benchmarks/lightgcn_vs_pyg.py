"""hybridrec's LightGCN against ``torch_geometric.nn.models.LightGCN``, step for step.

Both train on the Gowalla LightGCN split with the same initial embeddings, the same
seeded order of positives, the same uniform negatives (drawn once, up front), batch size
2048, 64 dimensions, 3 layers, Adam (lr 0.001), BPR + 1e-4 L2 on the batch's initial
embeddings, for ``--steps`` steps. Each implementation runs in its own process so its peak
resident memory (``ru_maxrss``) is its own. PyG is given both of its input forms
(``edge_index`` and a sparse CSR adjacency); the faster one is compared.

Usage::

    python benchmarks/lightgcn_vs_pyg.py [--steps 100] [--dataset-dir PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
BATCH, DIM, LAYERS, LR, L2 = 2048, 64, 3, 1e-3, 1e-4


def load(folder: Path):
    from hybridrec.data import load_dataset, make_split

    return make_split(load_dataset("gowalla", path=str(folder)), "given")


def batches(train, steps: int, seed: int = 0):
    """The same (users, positives, negatives) batches for every implementation."""
    from hybridrec.train import UniformNegativeSampler

    gen = torch.Generator().manual_seed(seed)
    sampler = UniformNegativeSampler(train.to_csr())
    users, items = torch.as_tensor(train.users), torch.as_tensor(train.items)
    perm = torch.randperm(len(users), generator=gen)
    out = []
    for s in range(steps):
        idx = perm[(s * BATCH) % len(perm):][:BATCH]
        u = users[idx]
        out.append((u, items[idx], sampler.sample(u, gen)))
    return out


def run(impl: str, folder: Path, steps: int) -> dict:
    from hybridrec.graph import BipartiteGraph
    from hybridrec.models.lightgcn import LightGCNModule
    from hybridrec.train import bpr_loss, l2_penalty

    torch.manual_seed(0)
    split = load(folder)
    train = split.train
    n_users, n_items = train.n_users, train.n_items
    data = batches(train, steps)
    init_u = torch.randn(n_users, DIM) * 0.1
    init_i = torch.randn(n_items, DIM) * 0.1

    if impl == "hybridrec":
        model = LightGCNModule(BipartiteGraph(train.to_csr()), DIM, LAYERS)
        with torch.no_grad():
            model.user.weight.copy_(init_u)
            model.item.weight.copy_(init_i)

        def embed():
            return model()

        def initial(u, p, n):
            return model.initial(u, p, n)
    else:
        from torch_geometric.nn.models import LightGCN
        from torch_geometric.utils import to_torch_csr_tensor

        model = LightGCN(n_users + n_items, DIM, LAYERS)
        with torch.no_grad():
            model.embedding.weight.copy_(torch.cat([init_u, init_i]))
        u_idx, i_idx = torch.as_tensor(train.users), torch.as_tensor(train.items) + n_users
        edge_index = torch.stack([torch.cat([u_idx, i_idx]), torch.cat([i_idx, u_idx])])
        if impl == "pyg-sparse":
            edge_index = to_torch_csr_tensor(edge_index, size=(n_users + n_items, n_users + n_items))

        def embed():
            e = model.get_embedding(edge_index)
            return e[:n_users], e[n_users:]

        def initial(u, p, n):
            w = model.embedding.weight
            return w[u], w[p + n_users], w[n + n_users]

    opt = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []
    t0 = time.perf_counter()
    for u, p, n in data:
        eu, ei = embed()
        x = eu[u]
        loss = bpr_loss((x * ei[p]).sum(-1), (x * ei[n]).sum(-1)) + L2 * l2_penalty(*initial(u, p, n))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"impl": impl, "seconds": seconds, "step_ms": 1000 * seconds / steps, "peak_rss_mb": peak_mb, "losses": losses}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--dataset-dir", type=Path,
                   default=Path(os.environ.get("HYBRIDREC_DATA", REPO.parent / "shared" / "datasets")) / "gowalla")
    p.add_argument("--impl", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.impl:
        print(json.dumps(run(args.impl, args.dataset_dir, args.steps)))
        return
    results = {}
    for impl in ("hybridrec", "pyg-edge", "pyg-sparse"):
        cmd = [sys.executable, __file__, "--impl", impl, "--steps", str(args.steps), "--dataset-dir", str(args.dataset_dir)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[impl] = json.loads(out.strip().splitlines()[-1])
        r = results[impl]
        print(f"{impl:11s} {r['seconds']:8.1f} s  {r['step_ms']:7.1f} ms/step  peak RSS {r['peak_rss_mb']:7.0f} MB  "
              f"loss {r['losses'][0]:.4f} -> {r['losses'][-1]:.4f}", flush=True)
    pyg = min(("pyg-edge", "pyg-sparse"), key=lambda k: results[k]["seconds"])
    ours, theirs = results["hybridrec"], results[pyg]
    gap = np.abs(np.array(ours["losses"]) - np.array(theirs["losses"])).max()
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; Gowalla, batch {BATCH}, "
          f"dim {DIM}, {LAYERS} layers, {args.steps} steps")
    print(f"speed-up over PyG ({pyg}, its faster form): {theirs['seconds'] / ours['seconds']:.2f}x; "
          f"peak RSS {ours['peak_rss_mb']:.0f} MB vs {theirs['peak_rss_mb']:.0f} MB; "
          f"largest per-step loss difference {gap:.2e}")


if __name__ == "__main__":
    main()
