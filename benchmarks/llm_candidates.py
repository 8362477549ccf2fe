"""GNN vs content vs hybrid vs a prompted LLM on the same candidate lists, and the two-stage pipeline.

Split: cold-item (``--cold-fraction`` of the items held out with all their interactions),
the other items leave-last-out by time (one test item per user). Each sampled test user's
target is their last held-out item by time, which is a cold item for some users and a warm
one for others. Candidate lists: the target plus ``N - 1`` items the user never touched,
drawn uniformly; the same lists for every model. Metrics: NDCG@K, HitRate@K (= Recall@K
with one target), MRR, for all, warm-target and cold-target lists, next to the exact
expectation of a random ranking.

Two-stage: stage 1 retrieves the top ``--m`` unseen items from the hybrid's embeddings
(faiss exact inner-product search), stage 2 reorders them with LightGCN or the LLM;
stage-1 recall@M and the end metrics are reported on the same users and targets.

Results go to ``benchmarks/results/llm-candidates-<dataset>/results.json`` and
``table.md``, with model sizes, the LLM's cost per user and the machine.

Usage::

    python benchmarks/llm_candidates.py --dataset ml-latest-small --users 100
    python benchmarks/llm_candidates.py --dataset synthetic --users 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hybridrec.config import TrainConfig  # noqa: E402
from hybridrec.data import load_dataset, make_split  # noqa: E402
from hybridrec.eval.candidates import build_candidates, evaluate_candidates, random_reference  # noqa: E402
from hybridrec.llm import LLMRanker  # noqa: E402
from hybridrec.models import build_model  # noqa: E402
from hybridrec.eval.twostage import two_stage_evaluate  # noqa: E402

KS = (1, 5, 10)


def n_params(model) -> int | None:
    if isinstance(model, LLMRanker):
        return sum(p.numel() for p in model.llm[0].parameters())
    if callable(getattr(model, "embeddings", None)):
        u, i = model.embeddings()
        extra = getattr(model, "_proj_weight", None)
        return int(u.numel() + i.numel() + (extra.numel() if extra is not None else 0))
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument("--users", type=int, default=100, help="sampled test users (the LLM costs seconds each)")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--m", type=int, default=20, help="items stage 1 retrieves per user")
    ap.add_argument("--cold-fraction", type=float, default=0.2)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--llm", default=None, help="LLM folder or hub name (default: offline SmolLM2-135M-Instruct)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or REPO / "benchmarks" / "results" / f"llm-candidates-{args.dataset}"
    out.mkdir(parents=True, exist_ok=True)
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads, device {args.device}")
    print("machine:", machine)

    data = load_dataset(args.dataset)
    split = make_split(data, "cold_item", cold_fraction=args.cold_fraction, base="leave_last_out", n_test=1,
                       seed=args.seed)
    cands = build_candidates(split, args.candidates, n_users=args.users, seed=args.seed)
    n_cold = int(cands.target_cold.sum())
    print(f"{split.summary()}\n{len(cands)} lists of {args.candidates}: {n_cold} cold targets, "
          f"{len(cands) - n_cold} warm")

    train = TrainConfig(epochs=args.epochs, lr=args.lr, l2=1e-4, batch_size=1024, eval_every=0, progress=False)
    specs = [("popularity", {}), ("content", {}), ("lightgcn", {"dim": 64, "n_layers": 3}),
             ("hybrid", {"dim": 64, "n_layers": 3}), ("llm", {})]
    models, rows = {}, {}
    for name, params in specs:
        t = time.perf_counter()
        if name == "llm":
            model = LLMRanker(args.llm, device=args.device, seed=args.seed).fit(split.train)
        else:
            model = build_model(name, params, device=args.device, seed=args.seed, train=train).fit(split.train)
        fit_s = time.perf_counter() - t
        res = evaluate_candidates(model, cands, ks=KS)
        models[name] = model
        rows[name] = {"metrics": res.metrics, "users": res.n_users, "fit_s": fit_s,
                      "params": n_params(model), **{k: v for k, v in res.info.items() if k not in ("random",)}}
        print(f"{name:>10}: " + "  ".join(f"{g} ndcg@10 {m['ndcg@10']:.4f}" for g, m in res.metrics.items())
              + f"  (fit {fit_s:.1f}s, eval {res.info['seconds']:.1f}s)", flush=True)

    two_stage = {}
    for label, reranker in (("hybrid only", None), ("hybrid -> lightgcn", models["lightgcn"]),
                            ("hybrid -> llm", models["llm"])):
        r = two_stage_evaluate(models["hybrid"], reranker, split, cands.users, cands.targets, m=args.m, ks=KS)
        two_stage[label] = r.to_dict()
        print(f"two-stage {label:>20}: stage-1 recall@{args.m} {r.stage1_recall:.4f}  "
              f"ndcg@10 {r.metrics['ndcg@10']:.4f}  hitrate@10 {r.metrics['hitrate@10']:.4f}", flush=True)

    random_row = random_reference(args.candidates, KS)
    doc = {"dataset": args.dataset, "machine": machine, "seed": args.seed,
           "command": "python benchmarks/llm_candidates.py " + " ".join(sys.argv[1:]),
           "split": split.summary(), "candidates": {"n": args.candidates, "users": len(cands), "cold_targets": n_cold},
           "random": random_row, "models": rows, "two_stage": two_stage, "m": args.m}
    (out / "results.json").write_text(json.dumps(doc, indent=2, default=float) + "\n")
    table = render(doc)
    (out / "table.md").write_text(table + "\n")
    print(table)


def render(doc: dict) -> str:
    c = doc["candidates"]
    lines = [f"{doc['dataset']}, cold-item split (seed {doc['seed']}), {c['users']} users x {c['n']} candidates "
             f"({c['cold_targets']} cold targets); {doc['machine']}", "",
             "| model | params | NDCG@10 all | NDCG@10 warm | NDCG@10 cold | HitRate@10 all | MRR all | s/user |",
             "|---|---|---|---|---|---|---|---|"]
    r = doc["random"]
    lines.append(f"| random (expected) | - | {r['ndcg@10']:.4f} | {r['ndcg@10']:.4f} | {r['ndcg@10']:.4f} | "
                 f"{r['hitrate@10']:.4f} | {r['mrr']:.4f} | - |")
    for name, row in doc["models"].items():
        m = row["metrics"]
        g = {k: (f"{m[k]['ndcg@10']:.4f}" if k in m and m[k]["ndcg@10"] == m[k]["ndcg@10"] else "-")
             for k in ("all", "warm", "cold")}
        params = f"{row['params'] / 1e6:.1f}M" if row.get("params") else "-"
        spu = f"{row['seconds_per_user']:.2f}" if "seconds_per_user" in row else f"{row['seconds'] / c['users']:.4f}"
        lines.append(f"| {name} | {params} | {g['all']} | {g['warm']} | {g['cold']} | "
                     f"{m['all']['hitrate@10']:.4f} | {m['all']['mrr']:.4f} | {spu} |")
    llm = doc["models"].get("llm", {})
    if "prompt_tokens_per_user" in llm:
        lines += ["", f"LLM cost per user: {llm['prompt_tokens_per_user']:.0f} prompt tokens, "
                      f"{llm['scored_tokens_per_user']:.0f} scored tokens, {llm['seconds_per_user']:.2f} s"]
    lines += ["", f"Two-stage (stage 1: hybrid embeddings, faiss exact search, top {doc['m']} unseen items):", "",
              f"| pipeline | stage-1 recall@{doc['m']} | NDCG@10 | HitRate@10 | MRR |", "|---|---|---|---|---|"]
    for label, t in doc["two_stage"].items():
        lines.append(f"| {label} | {t['stage1_recall']:.4f} | {t['metrics']['ndcg@10']:.4f} | "
                     f"{t['metrics']['hitrate@10']:.4f} | {t['metrics']['mrr']:.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
