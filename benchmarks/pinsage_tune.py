"""One PinSage tuning run on ml-latest-small (the split of ``configs/ml-latest-small.yaml``).

Fits PinSage with the given settings (validation Recall@20 picks the epoch), then reports
test Recall@20 / NDCG@20 for all, warm and cold items with users scored through their
``user_history`` most recent items and through 5, 10, 20 and 50 (no refit: only the mean
changes), and validation Recall@20 / NDCG@20 of each, which picks the history length. The last line printed is JSON; the lines before it are the epochs.

``--mf-recent`` instead fits MF-BPR with the config's settings and scores users both by
their MF vectors and as the mean of their most recent items' MF embeddings, to tell the
user representation apart from the item embeddings.

Usage::

    python benchmarks/pinsage_tune.py '{query_items: 25, n_easy: 4, easy_epochs: 1000}' '{l2: 0.0001}'
    python benchmarks/pinsage_tune.py --mf-recent
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hybridrec.config import load_config  # noqa: E402
from hybridrec.data import Split, load_dataset, make_split  # noqa: E402
from hybridrec.eval import EmbeddingScorer, evaluate  # noqa: E402
from hybridrec.models import build_model  # noqa: E402
from hybridrec.data.sequences import history_means, recent_items  # noqa: E402


def mean_of_recent(split, item_emb: torch.Tensor, k: int) -> torch.Tensor:
    """Users as the mean of their ``k`` most recent training items' vectors."""
    return history_means(recent_items(split.train, k), item_emb)


def rounded(metrics: dict) -> dict:
    return {g: {k: round(v, 4) for k, v in d.items()} for g, d in metrics.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", nargs="?", type=yaml.safe_load, default={}, help="PinSage settings (YAML)")
    ap.add_argument("train", nargs="?", type=yaml.safe_load, default={}, help="train settings over the config's")
    ap.add_argument("--mf-recent", action="store_true")
    args = ap.parse_args()
    cfg = load_config([str(REPO / "configs" / "ml-latest-small.yaml")])
    for k, v in {**args.train, "progress": False}.items():
        setattr(cfg.train, k, v)
    split = make_split(load_dataset("ml-latest-small"), cfg.data.split, seed=0, **cfg.data.split_options)
    name = "mf" if args.mf_recent else "pinsage"
    model = build_model(name, {"dim": 64, **args.params}, device="cpu", seed=0, train=cfg.train)
    t = time.perf_counter()
    model.fit(split.train, split.valid)
    fit_s = time.perf_counter() - t
    for row in model.history.rows:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    out = {"model": name, "params": args.params, "train": args.train, "fit_s": round(fit_s, 1),
           "best_epoch": model.history.best_epoch, "test": {}}
    if args.mf_recent:
        users, items = model.embeddings()
        out["test"]["mf"] = rounded(evaluate(EmbeddingScorer(users, items), split, ks=[20],
                                             metrics=["recall", "ndcg"]).metrics)
        for k in (10, 50, 1000):
            scorer = EmbeddingScorer(mean_of_recent(split, items, k), items)
            out["test"][f"mean of {k} recent"] = rounded(evaluate(scorer, split, ks=[20],
                                                                  metrics=["recall", "ndcg"]).metrics)
    else:
        out["valid"] = {}  # the validation items pick a history length; test reports them all
        valid = Split(train=split.train, test=split.valid, kind="validation")
        for k in [model.user_history] + [x for x in (5, 10, 20, 50) if x != model.user_history]:
            model._user_emb = mean_of_recent(split, model._item_emb, k)
            out["valid"][f"history {k}"] = rounded(evaluate(model, valid, ks=[20], metrics=["recall", "ndcg"])
                                                   .metrics)["all"]
            out["test"][f"history {k}"] = rounded(evaluate(model, split, ks=[20], metrics=["recall", "ndcg"]).metrics)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
