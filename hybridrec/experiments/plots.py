"""PNG plots of compare-mode results (matplotlib, no screen needed).

Each function takes the mean/std summary frame of :mod:`hybridrec.experiments.compare` (columns
``model``, ``group``, ``<metric>_mean``, ``<metric>_std``) and writes one figure whose
title states the data set, split and seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

GROUP_ORDER = ("all", "warm", "cold")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _std(x) -> float:
    return 0.0 if x != x else float(x)  # NaN with one seed


def metrics_by_model(summary, path: Path, *, title: str, k: int = 20,
                     metrics: tuple[str, ...] = ("recall", "ndcg"), reference: dict | None = None) -> Path:
    """Grouped bars: one panel per metric@k, one bar group per model, one bar per item
    group (all / warm / cold), error bars one standard deviation over seeds; ``reference``
    (e.g. the expectation of random ranking, ``{"ndcg@10": ...}``) is drawn as a dashed line."""
    plt = _plt()
    models = list(dict.fromkeys(summary["model"]))
    groups = [g for g in GROUP_ORDER if g in set(summary["group"])]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    width = 0.8 / max(len(groups), 1)
    x = np.arange(len(models))
    for ax, metric in zip(axes[0], metrics):
        col = f"{metric}@{k}"
        for j, g in enumerate(groups):
            mean, err = [], []
            for m in models:
                r = summary[(summary["model"] == m) & (summary["group"] == g)]
                mean.append(float(r.iloc[0][f"{col}_mean"]) if len(r) else np.nan)
                err.append(_std(r.iloc[0][f"{col}_std"]) if len(r) else 0.0)
            ax.bar(x + (j - (len(groups) - 1) / 2) * width, mean, width, yerr=err, capsize=2,
                   label=f"{g} items")
        if reference and col in reference:
            ax.axhline(reference[col], color="black", ls="--", lw=1, label="random ranking (expected)")
        ax.set_xticks(x)
        ax.set_xticklabels(models, rotation=20, ha="right")
        ax.set_ylabel(f"{metric.upper() if metric == 'ndcg' else metric.capitalize()}@{k} (mean, bars: +-1 sd)")
        ax.set_title(col)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(title="ranked among", loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def recall_by_popularity(summary, path: Path, *, title: str, k: int = 20) -> Path | None:
    """Recall@k per item popularity bucket (training interactions), one line per model:
    how each model does from cold to head items. Each bucket ranks its own items."""
    buckets = [g for g in dict.fromkeys(summary["group"]) if g.startswith("pop ")]
    if not buckets:
        return None
    buckets.sort(key=lambda g: int(g[4:].split("-")[0].rstrip("+")))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    x = np.arange(len(buckets))
    for m in dict.fromkeys(summary["model"]):
        mean, err = [], []
        for b in buckets:
            r = summary[(summary["model"] == m) & (summary["group"] == b)]
            mean.append(float(r.iloc[0][f"recall@{k}_mean"]) if len(r) else np.nan)
            err.append(_std(r.iloc[0][f"recall@{k}_std"]) if len(r) else 0.0)
        ax.errorbar(x, mean, yerr=err, marker="o", capsize=3, label=m)
    ax.set_xticks(x)
    ax.set_xticklabels([b[4:] for b in buckets])
    return _finish(plt, fig, ax, path, "item's training interactions (bucket; each bucket ranks its own items)",
                   f"Recall@{k}", f"Recall@{k} by item popularity\n{title}")


def threshold_sweep(sweep, path: Path, *, title: str, k: int = 20, default: float = 100.0) -> Path:
    """Hybrid Recall@k against the blend threshold tau, one line per item group; tau = inf
    (content only) is drawn at the right end, the default tau as a dashed line."""
    plt = _plt()
    ts = sorted(dict.fromkeys(sweep["threshold"]), key=float)
    finite = [t for t in ts if not math.isinf(t)]
    inf_x = 2 * max(finite) if finite and max(finite) > 0 else 1000.0
    xs = [inf_x if math.isinf(t) else t for t in ts]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for g, style in zip(GROUP_ORDER, ("o-", "s--", "^:")):
        rows = [sweep[(sweep["threshold"] == t) & (sweep["group"] == g)] for t in ts]
        if not all(len(r) for r in rows):
            continue
        mean = [float(r.iloc[0][f"recall@{k}_mean"]) for r in rows]
        err = [_std(r.iloc[0][f"recall@{k}_std"]) for r in rows]
        ax.errorbar(xs, mean, yerr=err, fmt=style, capsize=3, label=f"{g} items")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xticks(xs)
    ax.set_xticklabels([("inf\n(content)" if math.isinf(t) else f"{t:g}") for t in ts])
    ax.axvline(default, color="grey", lw=0.8, ls="--", label=f"default tau={default:g}")
    return _finish(plt, fig, ax, path, "blend threshold tau (training interactions at which an item is pure graph)",
                   f"Recall@{k}", f"Hybrid blend threshold sweep\n{title}")


def _finish(plt, fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Label, grid, legend, save as PNG and close one single-panel figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
