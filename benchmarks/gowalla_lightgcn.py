"""Train a graph model on the Gowalla LightGCN split and record Recall@20 against wall time.

The paper's protocol: the given train/test files, 64 dimensions, full ranking over all
40,981 items with training items masked, all 29,858 users. The test set is evaluated every
``--eval-every`` epochs to draw the curve (Gowalla has no validation part; the number
reported is the last evaluation, not the best one, so the test set picks nothing).
Training time excludes these evaluations; both are recorded.

Writes ``<out>/curve.csv``, ``<out>/summary.json`` and ``<out>/curve.png``.

``--config configs/gowalla-<model>.yaml`` takes the model, its settings and the training
recipe (epochs, batch size, lr, L2, negatives) from the committed config, the same one
``python -m hybridrec.run --config configs/gowalla-<model>.yaml`` trains; flags given
after it override it.

Usage::

    python benchmarks/gowalla_lightgcn.py --config configs/gowalla-mf.yaml --max-minutes 30
    python benchmarks/gowalla_lightgcn.py --model lightgcn --batch-size 2048 --lr 0.001 --max-minutes 60
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path

import torch

from hybridrec.config import TrainConfig
from hybridrec.data import load_dataset, make_split
from hybridrec.eval import EmbeddingScorer, evaluate
from hybridrec.models import build_model
from hybridrec.train import bpr_loss, l2_penalty
from hybridrec.train.sampling import build_sampler

REPO = Path(__file__).resolve().parents[1]
#: Recall@20 on this split reported in the LightGCN paper (MF-BPR: its rerun).
PAPER_RECALL = {"lightgcn": 0.1830, "ngcf": 0.1570, "mf": 0.1627}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="lightgcn", choices=["lightgcn", "ngcf", "mf"])
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--l2", type=float, default=1e-4)
    p.add_argument("--negatives", default="uniform")
    p.add_argument("--init", default="normal", choices=["normal", "spectral"], help="layer-0 embeddings")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--lr-halve-every", type=int, default=0, help="halve the learning rate every N epochs (0: never)")
    p.add_argument("--max-minutes", type=float, default=60.0, help="stop training after this much training time")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--target", type=float, default=None, help="stop once Recall@20 reaches this")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(extra_params={})
    p.add_argument("--data", default=os.environ.get("HYBRIDREC_DATA", str(REPO.parent / "shared" / "datasets")))
    p.add_argument("--out", default=None)
    p.add_argument("--config", default=None, help="a gowalla-<model>.yaml recipe (flags override it)")
    p.add_argument("--pool-size", type=int, default=10, help="candidates per hard negative")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the curve's times are this device's)")
    pre, _ = p.parse_known_args()
    if pre.config:
        p.set_defaults(**recipe_defaults(pre.config))
    args = p.parse_args()
    out = Path(args.out or REPO / "benchmarks" / "results" / f"gowalla-{args.model}")
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    split = make_split(load_dataset("gowalla", path=f"{args.data}/gowalla"), "given")
    params = {"dim": args.dim, "init": args.init, **args.extra_params}
    if args.model != "mf":
        params["n_layers"] = args.layers
    device = torch.device(args.device)
    rec = build_model(args.model, params, seed=args.seed, device=device)  # the graph is built on the device
    module = rec.build_module(split.train).to(device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    options = {"pool_size": args.pool_size} if args.negatives == "hard" else {}
    sampler = build_sampler(args.negatives, split.train.to_csr(), device=device, **options)
    users = torch.as_tensor(split.train.users, device=device)
    items = torch.as_tensor(split.train.items, device=device)
    opt = torch.optim.Adam(module.parameters(), lr=args.lr)
    schedule = TrainConfig(lr=args.lr, lr_halve_every=args.lr_halve_every)
    rows, train_s, t_start = [], 0.0, time.perf_counter()
    print(f"{args.model}: batch {args.batch_size}, lr {args.lr}, l2 {args.l2}, {args.negatives} negatives", flush=True)
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        for group in opt.param_groups:  # the library's schedule (TrainConfig.lr_at)
            group["lr"] = schedule.lr_at(epoch)
        module.train()
        perm = torch.randperm(len(users), generator=gen, device=device)
        total, n_b = torch.zeros((), device=device), 0
        for b in range(0, len(perm), args.batch_size):
            idx = perm[b:b + args.batch_size]
            u, pos = users[idx], items[idx]
            eu, ei = module()
            neg = sampler.sample(u, gen, user_emb=eu.detach(), item_emb=ei.detach())
            x = eu[u]
            loss = bpr_loss((x * ei[pos]).sum(-1), (x * ei[neg]).sum(-1)) + args.l2 * l2_penalty(*module.initial(u, pos, neg))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n_b = total + loss.detach(), n_b + 1
        total = float(total)  # one device sync an epoch, so the time below is the epoch's
        train_s += time.perf_counter() - t0
        done = train_s > args.max_minutes * 60 or epoch == args.epochs
        if epoch % args.eval_every == 0 or done or epoch == 1:
            module.eval()
            with torch.no_grad():
                eu, ei = module()
            te = time.perf_counter()
            res = evaluate(EmbeddingScorer(eu, ei), split, ks=[20], metrics=["recall", "ndcg"], device=device)
            m = res.metrics["all"]
            row = {"epoch": epoch, "train_seconds": round(train_s, 1), "loss": total / n_b,
                   "recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"], "eval_seconds": round(time.perf_counter() - te, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            _write(out, args, rows, t_start)
            if args.target is not None and m["recall@20"] >= args.target:
                break
        if done:
            break


def recipe_defaults(path: str) -> dict:
    """Benchmark defaults from a config file's model and train sections."""
    from hybridrec.config import load_config

    cfg = load_config([path])
    params = dict(cfg.model.params)
    t = cfg.train
    out = {"model": cfg.model.name, "dim": params.pop("dim", 64), "init": params.pop("init", "normal"),
           "layers": params.pop("n_layers", 3), "batch_size": t.batch_size, "lr": t.lr, "l2": t.l2,
           "negatives": t.negatives, "epochs": t.epochs, "lr_halve_every": t.lr_halve_every, "extra_params": params}
    if "pool_size" in t.negative_options:
        out["pool_size"] = t.negative_options["pool_size"]
    return out


def _write(out: Path, args, rows, t_start) -> None:
    with open(out / "curve.csv.tmp", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(out / "curve.csv.tmp", out / "curve.csv")
    summary = {"settings": vars(args), "last": rows[-1], "wall_seconds": time.perf_counter() - t_start,
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"torch {torch.__version__}, {torch.get_num_threads()} threads"
                          + (f", {torch.cuda.get_device_name()}" if args.device.startswith("cuda") else "")}
    (out / "summary.json.tmp").write_text(json.dumps(summary, indent=2))
    os.replace(out / "summary.json.tmp", out / "summary.json")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["train_seconds"] / 60 for r in rows], [r["recall@20"] for r in rows], marker="o", label=args.model)
    ref = PAPER_RECALL[args.model]
    ax.axhline(ref, color="grey", ls="--", label=f"published {args.model} ({ref:.4f})")
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{os.cpu_count()} CPU cores"
    ax.set_xlabel(f"training wall time (minutes, {where})")
    ax.set_ylabel("Recall@20 (test, full ranking)")
    ax.set_title(f"Gowalla, LightGCN split: {args.model}, batch {args.batch_size}, lr {args.lr}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
