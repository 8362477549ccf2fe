"""PinSage against popularity and MF-BPR on ml-latest-small over several seeds, through the CLI.

Each seed runs the two committed commands of the README::

    python -m hybridrec.run --config configs/ml-latest-small.yaml --seed S          # popularity, MF-BPR
    python -m hybridrec.run --config configs/pinsage-ml-latest-small.yaml --seed S  # PinSage

The leave-last-out split does not depend on the seed (the last interactions of each user
are held out); the seed changes initialisation, negatives, walks and query sampling. The
script reads each run folder's ``metrics.json`` and writes a table of test Recall@20 /
NDCG@20 per seed with their mean and standard deviation, and PinSage's gain over MF per
seed, to ``--out`` (``table.md``, ``results.json``).

Usage::

    python benchmarks/pinsage_seeds.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RUNS = [("configs/ml-latest-small.yaml", ["popularity", "mf"]), ("configs/pinsage-ml-latest-small.yaml", ["pinsage"])]
METRICS = ("recall@20", "ndcg@20")


def run(config: str, seed: int, out_dir: Path, device: str) -> Path:
    """One CLI run; returns its run folder (the newest under ``out_dir``)."""
    before = set(out_dir.glob("*")) if out_dir.exists() else set()
    cmd = [sys.executable, "-m", "hybridrec.run", "--config", config, "--seed", str(seed), "--device", device,
           "--out-dir", str(out_dir), "--quiet"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)
    new = sorted(set(out_dir.glob("*")) - before)
    if len(new) != 1:
        raise RuntimeError(f"expected one new run folder under {out_dir}, found {new}")
    return new[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", default=str(REPO / "runs" / "pinsage-seeds"), help="parent of the run folders")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "pinsage-seeds"))
    args = ap.parse_args()
    runs_dir = Path(args.runs)
    per_seed: dict = {}
    for seed in args.seeds:
        per_seed[seed] = {}
        for config, models in RUNS:
            folder = run(config, seed, runs_dir, args.device)
            metrics = json.loads((folder / "metrics.json").read_text())
            for m in models:
                per_seed[seed][m] = {k: metrics[m]["metrics"]["all"][k] for k in METRICS} | {"run": folder.name}
    models = [m for _, ms in RUNS for m in ms]
    lines = ["| model | " + " | ".join(f"seed {s} R@20 / N@20" for s in args.seeds) + " | mean R@20 (std) "
             "| mean N@20 (std) |", "|---" * (len(args.seeds) + 3) + "|"]
    summary = {}
    for m in models:
        vals = {k: np.array([per_seed[s][m][k] for s in args.seeds]) for k in METRICS}
        summary[m] = {k: {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
                      for k, v in vals.items()}
        cells = [f"{per_seed[s][m]['recall@20']:.4f} / {per_seed[s][m]['ndcg@20']:.4f}" for s in args.seeds]
        lines.append(f"| {m} | " + " | ".join(cells) + " | " + " | ".join(
            f"{summary[m][k]['mean']:.4f} ({summary[m][k]['std']:.4f})" for k in METRICS) + " |")
    gains = [per_seed[s]["pinsage"]["recall@20"] / per_seed[s]["mf"]["recall@20"] - 1 for s in args.seeds]
    lines += ["", "PinSage vs MF-BPR, Recall@20 per seed: " + ", ".join(f"{g:+.1%}" for g in gains)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "device": args.device}
    (out / "results.json").write_text(json.dumps({"machine": machine, "seeds": args.seeds, "per_seed": per_seed,
                                                  "summary": summary, "pinsage_vs_mf_recall": gains}, indent=2))
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
