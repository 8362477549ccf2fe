"""One run end to end: load -> split -> fit -> evaluate -> save. Used by the CLI."""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .config import Config, ConfigError
from .data import load_dataset, make_split
from .eval import evaluate
from .models import build_model, model_class
from .models.base import _accepted_settings

log = logging.getLogger("hybridrec.pipeline")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def model_names(spec: str) -> list[str]:
    """``"popularity, mf"`` -> ["popularity", "mf"]."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError("model.name is empty; name at least one model")
    return names


def model_params(spec: str, params: dict) -> dict[str, dict]:
    """Share ``params`` among the models of ``spec``; a key no listed model takes is an error."""
    names = model_names(spec)
    per_model = {n: {k: v for k, v in params.items() if k in _accepted_settings(model_class(n))} for n in names}
    used = set().union(*[set(p) for p in per_model.values()]) if per_model else set()
    unused = sorted(set(params) - used)
    if unused:
        raise ConfigError(f"model.params {unused} are settings of none of the models {names}")
    return per_model


def results_table(rows: list[dict], ks: list[int]) -> str:
    """Fixed-width table: one line per (model, item group), one column per metric."""
    if not rows:
        return "(no results)"
    metric_cols = [c for c in rows[0] if c not in ("model", "group", "users", "fit_s", "eval_s")]
    cols = ["model", "group", "users"] + metric_cols + ["fit_s", "eval_s"]
    cells = [[f"{r[c]:.1f}" if c.endswith("_s") else _fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.rjust(w) for c, w in zip(cols, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "" if v is None else str(v)


def run_models(cfg: Config, run_dir: Path, new_items: str | None = None, top_k: int = 20) -> str:
    """Train and evaluate each model of ``cfg.model.name`` (comma-separated) on one split.

    With ``new_items`` (a file of items with text and no interactions), each content-aware
    model also ranks users for every new item into ``new_items_top_users.csv``.
    """
    seed_everything(cfg.run.seed)
    t0 = time.perf_counter()
    data = load_dataset(cfg.data.dataset, cfg.data.path, **cfg.data.options)
    split = make_split(data, cfg.data.split, seed=cfg.run.seed, **cfg.data.split_options)
    log.info("data %r loaded and split in %.1fs: %s", data, time.perf_counter() - t0, split.summary())
    write_atomic(run_dir / "split.json", json.dumps(split.summary(), indent=2, default=str))

    per_model = model_params(cfg.model.name, cfg.model.params)
    dist = distributed.context(cfg.run.device)
    rows, all_results, histories, new_rows = [], {}, {}, []
    for name in per_model:
        seed_everything(cfg.run.seed)
        model = build_model(
            name, per_model[name], device=cfg.run.device, seed=cfg.run.seed,
            train=cfg.train, eval_batch_size=cfg.eval.batch_size,
        )
        t = time.perf_counter()
        model.fit(split.train, split.valid)
        fit_s = time.perf_counter() - t
        if dist is not None:
            _write_share(run_dir / "ddp", name, dist, model, fit_s)
            if not dist.is_main:  # the main process evaluates and writes the results
                continue
        t = time.perf_counter()
        res = evaluate(model, split, ks=cfg.eval.ks, metrics=cfg.eval.metrics, batch_size=cfg.eval.batch_size)
        eval_s = time.perf_counter() - t
        log.info("%s: fit %.1fs, eval %.1fs, %s", name, fit_s, eval_s, res.metrics)
        model.save(run_dir / "models" / name)
        if new_items is not None:
            new_rows += _rank_users_for_new_items(model, name, new_items, top_k)
        all_results[name] = {**res.to_dict(), "fit_seconds": fit_s, "eval_seconds": eval_s}
        if getattr(model, "history", None) is not None:
            histories[name] = model.history.to_dict()
        for group, metrics in res.metrics.items():
            rows.append({"model": name, "group": group, "users": res.n_users[group], **metrics,
                         "fit_s": fit_s, "eval_s": eval_s})

    if dist is not None and not dist.is_main:
        return ""
    write_atomic(run_dir / "metrics.json", json.dumps(all_results, indent=2))
    write_atomic(run_dir / "history.json", json.dumps(histories, indent=2))
    _write_csv(run_dir / "metrics.csv", rows)
    if new_items is not None:
        _write_csv(run_dir / "new_items_top_users.csv", new_rows)
    title = (f"{cfg.data.dataset} | split {split.kind} (seed {cfg.run.seed}) | "
             f"{split.n_users} users, {split.n_items} items | full ranking, training items masked")
    return title + "\n" + results_table(rows, cfg.eval.ks)


def _write_share(folder: Path, name: str, dist, model, fit_s: float) -> None:
    """What this process trained on: ``<model>.rank<r>.json`` (pairs per epoch, fit time) and
    ``<model>.rank<r>.safetensors`` (the training-pair indices of its share of epoch 1)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name}.rank{dist.rank}"
    info = {"rank": dist.rank, "world_size": dist.world_size, "fit_seconds": fit_s,
            "pairs_per_epoch": [r["pairs"] for r in model.history.rows]}
    write_atomic(folder / f"{stem}.json", json.dumps(info, indent=2))
    tmp = folder / f".{stem}.safetensors.tmp"
    save_file({"epoch1_pairs": model.trained_pairs.contiguous()}, str(tmp))
    tmp.replace(folder / f"{stem}.safetensors")


def _write_csv(path: Path, rows: list[dict]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))  # rows may differ
            w.writeheader()
            w.writerows(rows)
    os.replace(tmp, path)


def _rank_users_for_new_items(model, name: str, path: str, k: int) -> list[dict]:
    """Top-``k`` users of each new item: rows (model, item_id, rank, user_id, score)."""
    from .newitems import read_new_items

    if not hasattr(model, "new_items"):
        raise ConfigError(f"model {name!r} cannot score new items; use --mode hybrid or --mode cold")
    new = model.new_items(read_new_items(path), where=str(path))
    log.info("%s: ranking users for %d new items from %s", name, len(new), path)
    return [{"model": name, "item_id": item, "rank": r + 1, "user_id": u, "score": float(s)}
            for item, (users, scores) in model.top_users(new, k=k).items()
            for r, (u, s) in enumerate(zip(users, scores))]
