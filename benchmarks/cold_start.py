"""Cold-start benchmark: random, popularity, content, LightGCN and hybrid on a cold-item split.

A ``cold_item`` split holds ``--cold-fraction`` of the items out of training entirely;
their interactions join the test set; the other items' interactions are split per user
(leave-last-out by time, ``--n-test`` per user). Every model is evaluated on Recall@20 and
NDCG@20 over all test items (ranking the whole catalogue), warm items only and cold items
only (each group ranks only its own items). Each seed draws a new split, sampling and
initialisation; the table gives mean and standard deviation over ``--seeds``.

``--sweep`` adds the hybrid at each blend threshold of ``--thresholds`` (0 = graph only
for every item with an interaction, inf = content only) on the first ``--sweep-seeds``
seeds and plots Recall@20 against the threshold.

Text is encoded by all-MiniLM-L6-v2 (the offline default; cached after the first run).
Results go to ``benchmarks/results/cold-start-<dataset>/`` (``runs.csv`` one row per
model, seed and group; ``summary.csv``/``summary.json`` mean and spread; ``sweep.png``).

Usage::

    python benchmarks/cold_start.py --dataset ml-latest-small --seeds 0 1 2 --sweep
    python benchmarks/cold_start.py --dataset synthetic --seeds 0 1 2
    python benchmarks/cold_start.py --only pinsage --append --pinsage-params '{query_items: 10}'
    python benchmarks/cold_start.py --dataset synthetic --resume   # after an interruption
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hybridrec.experiments.compare import parse_threshold  # noqa: E402
from hybridrec.config import Config, load_config  # noqa: E402
from hybridrec.experiments.compare import model_train, training_record  # noqa: E402
from hybridrec.experiments.modes import CONVERGE  # noqa: E402
from hybridrec.data import load_dataset, make_split  # noqa: E402
from hybridrec.eval import evaluate  # noqa: E402
from hybridrec.io import write_csv  # noqa: E402
from hybridrec.models import build_model  # noqa: E402
from hybridrec.experiments.plots import threshold_sweep  # noqa: E402
from hybridrec.text import TextEncoder, item_strings  # noqa: E402

GROUPS = ("all", "warm", "cold")
METRICS = ("recall@20", "ndcg@20")


def model_runs(args) -> list[tuple[str, str | None, dict]]:
    graph = {"dim": args.dim, "n_layers": args.layers}
    runs = [("random", "random", {}), ("popularity", "popularity", {}), ("content", "content", {}),
            ("lightgcn", "lightgcn", graph), ("hybrid", "hybrid", {**graph, "threshold": 100}),
            ("pinsage", "pinsage", {"dim": args.dim, **args.pinsage_params})]
    if args.sweep:
        runs += [(f"hybrid tau={_fmt(t)}", "hybrid", {**graph, "threshold": t})
                 for t in args.thresholds if t != 100]
    return runs


def _fmt(t: float) -> str:
    return "inf" if math.isinf(t) else f"{t:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cold-fraction", type=float, default=0.2)
    ap.add_argument("--n-test", type=int, default=5, help="warm test interactions per user")
    ap.add_argument("--n-valid", type=int, default=1,
                    help="validation interactions per user, for early stopping (0: none, train every epoch)")
    ap.add_argument("--valid-cold-fraction", type=float, default=0.05,
                    help="share of items held out into validation with all their interactions, so the "
                         "hybrid's blend is chosen on cold items too (0: none)")
    ap.add_argument("--config", nargs="*", default=[],
                    help="YAML files whose train section, and compare.train per-model recipes, set the "
                         "training (default: up to 100 epochs at lr 0.01, patience 10, as --mode compare)")
    ap.add_argument("--epochs", type=int, default=None, help="overrides train.epochs")
    ap.add_argument("--lr", type=float, default=None, help="overrides train.lr")
    ap.add_argument("--l2", type=float, default=None, help="overrides train.l2")
    ap.add_argument("--batch-size", type=int, default=None, help="overrides train.batch_size")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--sweep", action="store_true", help="also run the hybrid at every --thresholds value")
    ap.add_argument("--sweep-seeds", type=int, default=1, help="how many of --seeds (the first) the sweep runs on")
    ap.add_argument("--thresholds", type=parse_threshold, nargs="+", default=[0, 10, 50, 100, 200, math.inf])
    ap.add_argument("--pinsage-params", type=yaml.safe_load, default={},
                    help="PinSage settings as YAML, e.g. '{query_items: 10, easy_epochs: 100}'")
    ap.add_argument("--pinsage-epochs", type=int, default=10, help="PinSage's epochs (its epochs are longer)")
    ap.add_argument("--only", nargs="+", help="run only these model labels")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--replot", action="store_true", help="redo the tables and plot from runs.csv, no training")
    ap.add_argument("--append", action="store_true",
                    help="add this run's rows to the existing runs.csv (replacing the same model and seed)")
    ap.add_argument("--resume", action="store_true",
                    help="after an interruption: keep runs.partial.csv (written as each model and seed "
                         "completes) and skip the (model, seed) pairs it holds")
    args = ap.parse_args()
    out = args.out or REPO / "benchmarks" / "results" / f"cold-start-{args.dataset}"
    out.mkdir(parents=True, exist_ok=True)
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads, device {args.device}")
    print("machine:", machine)

    if args.replot:
        report(pd.read_csv(out / "runs.csv"), args, out, machine=json.loads((out / "summary.json").read_text())["machine"])
        return
    data = load_dataset(args.dataset)
    cfg = training_config(args)
    runs = [r for r in model_runs(args) if not args.only or r[0] in args.only]
    rows, splits = [], []
    partial = out / "runs.partial.csv"  # every finished (model, seed), so an interruption loses one at most
    if args.resume and partial.exists():
        rows = pd.read_csv(partial).to_dict("records")
        print(f"resuming: {len({(r['model'], r['seed']) for r in rows})} (model, seed) pairs from {partial}")
    finished = {(r["model"], r["seed"]) for r in rows}
    for n_seed, seed in enumerate(args.seeds):
        split = make_split(data, "cold_item", cold_fraction=args.cold_fraction, base="leave_last_out",
                           n_test=args.n_test, n_valid=args.n_valid,
                           valid_cold_fraction=args.valid_cold_fraction if args.n_valid else 0.0, seed=seed)
        print(f"seed {seed}: {split.summary()}")
        splits.append({"seed": seed, **split.info})
        t = time.perf_counter()
        enc = TextEncoder(device=args.device, progress=False)
        content = enc.encode(item_strings(split.train), ids=split.train.item_vocab.to_list())
        print(f"  text: {len(content)} items in {time.perf_counter() - t:.1f}s ({enc.stats})")
        for label, name, params in runs:
            if label.startswith("hybrid tau=") and n_seed >= args.sweep_seeds or (label, seed) in finished:
                continue
            t = time.perf_counter()
            train_cfg = model_train(cfg, name)
            if name == "pinsage":
                train_cfg = dataclasses.replace(train_cfg, epochs=min(train_cfg.epochs, args.pinsage_epochs))
            model = build_model(name, params, device=args.device, seed=seed, train=train_cfg)
            extra = {"item_embeddings": content} if model.content_aware else {}
            model.fit(split.train, split.valid, **extra)
            fit_s = time.perf_counter() - t
            res = evaluate(model, split, ks=[20], metrics=["recall", "ndcg"], device=args.device)
            trained = training_record(model, train_cfg.epochs) if getattr(model, "history", None) else {}
            for g in GROUPS:
                rows.append({"model": label, "seed": seed, "group": g, "fit_s": round(fit_s, 2),
                             "epochs": trained.get("epochs"), "best_epoch": trained.get("best_epoch"),
                             "stop": trained.get("stop"), **{m: res.metrics[g][m] for m in METRICS}})
            cells = "  ".join(f"{g}:{res.metrics[g]['recall@20']:.4f}" for g in GROUPS)
            kept = f"epoch {trained['best_epoch']}/{trained['epochs']}, {trained['stop']}" if trained else ""
            print(f"  {label:>16} fit {fit_s:6.1f}s  R@20 {cells}  {kept}", flush=True)
            write_csv(partial, rows)

    frame = pd.DataFrame(rows)
    if args.append and (out / "runs.csv").exists():
        old = pd.read_csv(out / "runs.csv")
        done = set(zip(frame["model"], frame["seed"]))
        old = old[[(m, s) not in done for m, s in zip(old["model"], old["seed"])]]
        frame = pd.concat([old, frame], ignore_index=True)
        prev = json.loads((out / "summary.json").read_text())
        splits = prev.get("splits", []) + [s for s in splits if s["seed"] not in {p["seed"] for p in prev.get("splits", [])}]
        args.seeds = sorted(set(frame["seed"]))
        args.command_extra = prev["command"]
    frame.to_csv(out / "runs.csv", index=False)
    partial.unlink(missing_ok=True)  # runs.csv holds every row now
    report(frame, args, out, machine, splits)


def training_config(args) -> Config:
    """The train section (the converged recipe of ``--mode compare`` unless a config or flag
    says otherwise) with validation each epoch when there is a validation part."""
    base = {"train": {**CONVERGE, "l2": 1e-4, "batch_size": 1024}}
    flags = {"epochs": args.epochs, "lr": args.lr, "l2": args.l2, "batch_size": args.batch_size}
    overrides = [f"train.{k}={v}" for k, v in flags.items() if v is not None]
    overrides.append(f"train.eval_every={1 if args.n_valid else 0}")
    return load_config(args.config, overrides, base=base)


def summarise(frame):
    cols = list(METRICS) + [c for c in ("fit_s", "epochs") if c in frame]
    summary = (frame.groupby(["model", "group"], sort=False)[cols]
               .agg(["mean", "std"]).reset_index())
    summary.columns = ["_".join(c).rstrip("_") for c in summary.columns]
    return summary


def report(frame, args, out: Path, machine: str, splits=None) -> None:
    summary = summarise(frame)
    summary.to_csv(out / "summary.csv", index=False)
    cfg = training_config(args)
    if splits is None:  # --replot: keep what the training run recorded
        splits = json.loads((out / "summary.json").read_text()).get("splits", [])
    meta = {"dataset": args.dataset, "seeds": args.seeds, "machine": machine,
            "command": _command(args, out),
            "split": {"kind": "cold_item", "cold_fraction": args.cold_fraction, "base": "leave_last_out",
                      "n_test": args.n_test, "n_valid": args.n_valid,
                      "valid_cold_fraction": args.valid_cold_fraction if args.n_valid else 0.0},
            "train": dataclasses.asdict(cfg.train), "compare_train": cfg.compare.train,
            "dim": args.dim, "layers": args.layers,
            "sweep_seeds": args.seeds[:args.sweep_seeds] if args.sweep else [],
            "splits": splits, "summary": summary.to_dict(orient="records")}
    (out / "summary.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    print_table(summary)
    if args.sweep:
        sweep_seeds = args.seeds[:args.sweep_seeds]
        print(f"\nthreshold sweep on seed(s) {sweep_seeds} (every threshold on the same seeds):")
        sweep = summarise(frame[frame["seed"].isin(sweep_seeds)])
        sweep = sweep[sweep["model"].str.startswith("hybrid")]
        print_table(sweep)
        sweep.to_csv(out / "sweep.csv", index=False)
        plot_sweep(sweep, args, out)
    print(f"results in {out}")


def _command(args, out: Path) -> str:
    """The command that trained the models (a --replot keeps the one recorded)."""
    if args.replot:
        return json.loads((out / "summary.json").read_text())["command"]
    this = "python benchmarks/cold_start.py " + " ".join(f"'{a}'" if " " in a else a for a in sys.argv[1:])
    return f"{args.command_extra}; then {this}" if getattr(args, "command_extra", None) else this


def print_table(summary) -> None:
    print("\nRecall@20 / NDCG@20, mean +- std over seeds")
    print(f"{'model':>16}  " + "  ".join(f"{g:>24}" for g in GROUPS) + "  epochs (mean)")
    for model in dict.fromkeys(summary["model"]):
        cells = []
        for g in GROUPS:
            r = summary[(summary["model"] == model) & (summary["group"] == g)].iloc[0]
            cells.append(f"{r['recall@20_mean']:.4f}+-{_sd(r['recall@20_std'])} "
                         f"{r['ndcg@20_mean']:.4f}+-{_sd(r['ndcg@20_std'])}")
        ep = r.get("epochs_mean", float("nan"))
        print(f"{model:>16}  " + "  ".join(f"{c:>24}" for c in cells) + (f"  {ep:.1f}" if ep == ep else "  -"))


def _sd(x) -> str:
    return "-" if x != x else f"{x:.4f}"  # NaN with one seed


def plot_sweep(summary, args, out: Path) -> None:
    """The library's sweep plot (:func:`hybridrec.experiments.plots.threshold_sweep`) of the sweep rows."""
    labels = {("hybrid" if t == 100 else f"hybrid tau={_fmt(t)}"): t for t in args.thresholds}
    sweep = summary[summary["model"].isin(labels)].assign(threshold=lambda f: f["model"].map(labels))
    seeds = args.seeds[:args.sweep_seeds]
    threshold_sweep(sweep, out / "sweep.png", title=f"{args.dataset}, cold-item split, seeds {seeds}", k=20)
    print(f"plot: {out / 'sweep.png'}")


if __name__ == "__main__":
    main()
