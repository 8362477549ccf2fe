"""Is the hybrid at least as good as its parts on data nobody tuned it for?

Runs the content model, LightGCN and the hybrid with the settings of ``--mode hybrid``
(its split options and training settings, no per-data-set changes) on

* a grid of synthetic catalogues: mean interactions per user 10, 35 and 100, crossed with
  how users choose: text-heavy (``topic_weight`` 4, ``factor_weight`` 1), balanced
  (2.5, 2.5) and interaction-heavy (1, 4);
* MovieLens 100K and MovieLens latest-small (``$HYBRIDREC_DATA`` or ``../shared/datasets``),

on a cold-item split (20% of items held out for test, 10% for validation), ``--seeds``
seeds each, and reports Recall@20 on all, warm and cold items: mean and standard deviation
over seeds, and the hybrid's ratio to the better part in each group.

Writes ``runs.csv`` (one row per cell, seed, model and group), ``summary.csv``,
``summary.md`` (the full table), ``compact.md`` (the README's table), ``dominance.png`` and ``blends.csv`` (the
blend the hybrid chose on validation for each cell and seed) to
``benchmarks/results/hybrid-dominance/``. The hybrid's graph part is the LightGCN of the
same seed (``fit(..., graph=)``: the same model it would train), so its ``fit_s`` is the
projection and the choice of the blend only.

Usage::

    python benchmarks/hybrid_dominance.py                   # everything, seeds 0 1 2
    python benchmarks/hybrid_dominance.py --cells synthetic-n35-balanced ml-100k --seeds 0
    python benchmarks/hybrid_dominance.py --replot          # tables and plot from runs.csv
    python benchmarks/hybrid_dominance.py --resume          # after an interruption: skip the finished (cell, seed)
    python benchmarks/hybrid_dominance.py --cells --extra \
        'shop={dataset: csv, path: /data/shop, interactions: inter.csv, items: items.csv, time_col: ts}'

``--extra NAME=YAML`` adds a cell of any data set ``load_dataset`` reads (``dataset``,
``path`` and loader options), with the same defaults as every other cell.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hybridrec.config import load_config  # noqa: E402
from hybridrec.data import generate_synthetic, load_dataset, make_split  # noqa: E402
from hybridrec.eval import evaluate  # noqa: E402
from hybridrec.experiments.modes import MODES  # noqa: E402
from hybridrec.models import build_model  # noqa: E402
from hybridrec.text import TextEncoder, item_strings  # noqa: E402

GROUPS = ("all", "warm", "cold")
MODELS = ("content", "lightgcn", "hybrid")
METRIC = "recall@20"
CHOICE = {"text": (4.0, 1.0), "balanced": (2.5, 2.5), "graph": (1.0, 4.0)}
DENSITY = (10, 35, 100)
REAL = ("ml-100k", "ml-latest-small")


def cells() -> dict[str, dict]:
    out = {f"synthetic-n{n}-{c}": {"synthetic": {"mean_interactions": float(n), "topic_weight": tw,
                                                 "factor_weight": fw}}
           for n in DENSITY for c, (tw, fw) in CHOICE.items()}
    out.update({name: {"dataset": name} for name in REAL})
    return out


def data_root() -> Path:
    env = os.environ.get("HYBRIDREC_DATA", "").strip()
    return Path(env) if env else REPO.parent / "shared" / "datasets"


def load(cell: dict, seed: int):
    if "synthetic" in cell:  # the catalogue is drawn once per cell (seed 0); each seed draws a split
        return generate_synthetic(seed=0, **cell["synthetic"])
    options = {k: v for k, v in cell.items() if k not in ("dataset", "path")}
    return load_dataset(cell["dataset"], path=cell.get("path") or data_root() / cell["dataset"], **options)


def parse_extra(text: str) -> tuple[str, dict]:
    import yaml

    name, sep, spec = text.partition("=")
    cell = yaml.safe_load(spec) if sep else None
    if not name or not isinstance(cell, dict) or "dataset" not in cell:
        raise argparse.ArgumentTypeError(f"--extra wants NAME={{dataset: ..., path: ..., ...}}, got {text!r}")
    return name, cell


def run_cell(name: str, cell: dict, seeds, cfg, device: str, done=frozenset(),
             on_seed=None) -> tuple[list[dict], list[dict]]:
    """Content, LightGCN and the hybrid on each seed's split of one cell; ``done`` holds
    (cell, seed) pairs a resumed run already has, and ``on_seed(rows, blends)`` is called
    as each seed completes, so an interruption loses at most the seed in progress."""
    seeds = [s for s in seeds if (name, s) not in done]
    if not seeds:
        return [], []
    data = load(cell, 0)
    enc = TextEncoder(device=device, progress=False)
    t = time.perf_counter()
    content = torch.as_tensor(enc.encode(item_strings(data), ids=data.item_vocab.to_list()))
    print(f"{name}: {data.n_users} users, {data.n_items} items, {len(data)} interactions; "
          f"text {time.perf_counter() - t:.1f}s", flush=True)
    rows, blends = [], []
    for seed in seeds:
        n_rows, n_blends = len(rows), len(blends)
        split = make_split(data, cfg.data.split, seed=seed, **cfg.data.split_options)
        fitted = {}
        for model_name in MODELS:
            params = {"dim": cfg.model.params.get("dim", 64)} if model_name != "content" else {}
            model = build_model(model_name, params, device=device, seed=seed, train=cfg.train)
            extra = {"item_embeddings": content} if model.content_aware else {}
            if model_name == "hybrid":  # its graph part is the LightGCN above (same settings and seed)
                extra["graph"] = fitted["lightgcn"]
            t = time.perf_counter()
            model.fit(split.train, split.valid, **extra)
            fit_s = time.perf_counter() - t
            fitted[model_name] = model
            res = evaluate(model, split, ks=[20], metrics=["recall", "ndcg"])
            hist = getattr(model, "history", None)
            epochs = None if hist is None else hist.to_dict().get("best_epoch")
            for group in GROUPS:
                m = res.metrics.get(group, {})
                rows.append({"cell": name, "seed": seed, "model": model_name, "group": group,
                             "recall@20": m.get("recall@20", np.nan), "ndcg@20": m.get("ndcg@20", np.nan),
                             "users": res.n_users.get(group, 0), "fit_s": round(fit_s, 2), "best_epoch": epochs})
            if model_name == "hybrid":
                blends.append({"cell": name, "seed": seed, **model.chosen.to_dict()})
            line = ", ".join(f"{g} {res.metrics[g][METRIC]:.4f}" for g in GROUPS if g in res.metrics)
            print(f"  seed {seed} {model_name:8s} {line}  ({fit_s:.1f}s, best epoch {epochs})", flush=True)
        if on_seed is not None:
            on_seed(rows[n_rows:], blends[n_blends:])
    return rows, blends


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    agg = runs.groupby(["cell", "model", "group"], sort=False)[METRIC].agg(["mean", "std"]).reset_index()
    out = []
    for (cell, group), part in agg.groupby(["cell", "group"], sort=False):
        by = part.set_index("model")
        if not {"content", "lightgcn", "hybrid"} <= set(by.index) or by["mean"].isna().all():
            continue
        best_part = np.nanmax([by.loc["content", "mean"], by.loc["lightgcn", "mean"]])
        row = {"cell": cell, "group": group}
        for m in MODELS:
            row[f"{m}_mean"], row[f"{m}_std"] = by.loc[m, "mean"], by.loc[m, "std"]
        row["ratio"] = by.loc["hybrid", "mean"] / best_part if best_part > 0 else np.nan
        row["above_both"] = bool(by.loc["hybrid", "mean"] > best_part)
        out.append(row)
    return pd.DataFrame(out)


def markdown(summary: pd.DataFrame) -> str:
    order = list(dict.fromkeys(summary["cell"]))
    head = "| cell | group | content | LightGCN | hybrid | hybrid / better part |\n|---|---|---|---|---|---|"
    lines = [head]
    for cell in order:
        for group in GROUPS:
            r = summary[(summary["cell"] == cell) & (summary["group"] == group)]
            if r.empty:
                continue
            r = r.iloc[0]
            cells_ = [f"{r[f'{m}_mean']:.4f} ± {0 if np.isnan(r[f'{m}_std']) else r[f'{m}_std']:.4f}" for m in MODELS]
            flag = "" if r["ratio"] >= 0.98 else " **(below 0.98)**"
            lines.append(f"| {cell} | {group} | " + " | ".join(cells_) + f" | {r['ratio']:.3f}{flag} |")
    n = len(summary)
    ok = int((summary["ratio"] >= 0.98).sum())
    all_rows = summary[summary["group"] == "all"]
    lines.append("")
    lines.append(f"{ok} of {n} (cell, group) pairs at >= 0.98x the better part; hybrid above both on all items "
                 f"in {int(all_rows['above_both'].sum())} of {len(all_rows)} cells.")
    return "\n".join(lines)


def compact(summary: pd.DataFrame) -> str:
    """One row per cell: the hybrid's Recall@20 and its ratio to the better part, per group."""
    lines = ["| cell | all | warm | cold |", "|---|---|---|---|"]
    for cell in dict.fromkeys(summary["cell"]):
        cells_ = []
        for group in GROUPS:
            r = summary[(summary["cell"] == cell) & (summary["group"] == group)]
            if r.empty:
                cells_.append("-")
                continue
            r = r.iloc[0]
            mark = "**" if r["ratio"] < 0.98 else ""
            cells_.append(f"{r['hybrid_mean']:.3f} ({mark}{r['ratio']:.2f}x{mark})")
        lines.append(f"| {cell} | " + " | ".join(cells_) + " |")
    return "\n".join(lines)


def plot(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = list(dict.fromkeys(summary["cell"]))
    fig, axes = plt.subplots(3, 1, figsize=(max(8, 0.9 * len(order)), 9), sharex=True)
    x = np.arange(len(order))
    for ax, group in zip(axes, GROUPS):
        part = summary[summary["group"] == group].set_index("cell").reindex(order)
        for j, (m, colour) in enumerate(zip(MODELS, ("tab:green", "tab:blue", "tab:red"))):
            ax.bar(x + (j - 1) * 0.27, part[f"{m}_mean"], 0.27, yerr=part[f"{m}_std"], label=m, color=colour,
                   capsize=2)
        ax.set_ylabel(f"{METRIC}, {group}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(ncol=3, loc="upper left")
    axes[-1].set_xticks(x, order, rotation=35, ha="right")
    fig.suptitle("content, LightGCN and the hybrid on a cold-item split (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(runs: pd.DataFrame, out: Path, info: dict) -> str:
    from hybridrec.io import write_csv, write_json, write_text

    summary = summarise(runs)
    write_csv(out / "summary.csv", summary.to_dict("records"))
    text = markdown(summary)
    write_text(out / "summary.md", f"{info['what']}\n\n{text}\n")
    write_text(out / "compact.md", "Hybrid Recall@20 (its ratio to the better of content and LightGCN; "
               "bold: below 0.98)\n\n" + compact(summary) + "\n")
    write_json(out / "info.json", info)
    plot(summary, out / "dominance.png")
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="*", choices=list(cells()), default=list(cells()))
    ap.add_argument("--extra", type=parse_extra, action="append", default=[], metavar="NAME=YAML",
                    help="another data set as a cell: NAME={dataset: csv, path: ..., <loader options>}")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "hybrid-dominance")
    ap.add_argument("--append", action="store_true", help="keep runs.csv rows of other cells")
    ap.add_argument("--replot", action="store_true", help="tables and plot from runs.csv, no training")
    ap.add_argument("--resume", action="store_true", help="keep runs.csv and blends.csv and skip the (cell, seed) "
                    "pairs they already hold (each seed is written as it completes)")
    args = ap.parse_args()
    from hybridrec.io import write_csv

    args.out.mkdir(parents=True, exist_ok=True)
    cfg = load_config([], ["train.progress=false"], base=MODES["hybrid"].base)
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads, device {args.device}")
    info = {"what": (f"Recall@20, mean ± std over seeds {args.seeds}; split {cfg.data.split} "
                     f"{cfg.data.split_options}; training {cfg.train.epochs} epochs max, lr {cfg.train.lr}, "
                     f"batch {cfg.train.batch_size}, early stopping on validation {cfg.train.valid_metric} "
                     f"(patience {cfg.train.patience}); all-MiniLM-L6-v2 text; {machine}. "
                     "Command: python benchmarks/hybrid_dominance.py"),
            "machine": machine, "seeds": args.seeds}
    if args.replot:
        print(report(pd.read_csv(args.out / "runs.csv"), args.out, info))
        return
    keep_old = (args.append or args.resume) and (args.out / "runs.csv").exists()
    old = pd.read_csv(args.out / "runs.csv") if keep_old else None
    old_blends = (pd.read_csv(args.out / "blends.csv").to_dict("records")
                  if args.resume and (args.out / "blends.csv").exists() else [])
    done = set()
    if args.resume and old is not None:  # a (cell, seed) counts as done when every model has its rows
        have = old.groupby(["cell", "seed"])["model"].agg(lambda m: set(m) >= set(MODELS))
        done = {key for key, ok in have.items() if ok}
        print(f"resuming: {len(done)} (cell, seed) pairs already in {args.out / 'runs.csv'}", flush=True)
    rows, blends = [], list(old_blends)
    t0 = time.perf_counter()
    todo = {**{name: cells()[name] for name in args.cells}, **dict(args.extra)}

    def save(new_rows, new_blends) -> pd.DataFrame:
        rows.extend(new_rows)
        blends.extend(new_blends)
        runs = pd.DataFrame(rows)
        if old is not None:
            mine = set(zip(runs["cell"], runs["seed"])) if len(runs) else set()
            keep = old if args.resume else old[~old["cell"].isin(runs["cell"].unique())]
            keep = keep[[(c, s) not in mine for c, s in zip(keep["cell"], keep["seed"])]]
            runs = pd.concat([keep, runs], ignore_index=True)
        write_csv(args.out / "runs.csv", runs.to_dict("records"))
        write_csv(args.out / ("blends.csv" if old is None or args.resume else "blends.new.csv"), blends)
        return runs

    runs = old if old is not None else pd.DataFrame()
    for name, cell in todo.items():
        run_cell(name, cell, args.seeds, cfg, args.device, done=done, on_seed=lambda r, b: save(r, b))
    if rows:
        runs = save([], [])
    info["seconds"] = round(time.perf_counter() - t0, 1)
    print(report(runs, args.out, info))
    print(json.dumps({"seconds": info["seconds"]}))


if __name__ == "__main__":
    main()
