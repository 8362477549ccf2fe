"""One run end to end (``--mode collab``, ``cold``, ``hybrid``): load -> split -> fit ->
evaluate -> save, for each model of ``model.name`` on one split.

With ``train.checkpoint_every > 0`` each model trains inside a checkpointing block whose
folder is ``run_dir/checkpoints/<model>``, so running again in the same folder
(``--resume``) continues every model from its checkpoint and skips finished ones."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from ..config import Config, ConfigError
from ..eval import evaluate
from ..io import save_tensors, write_csv, write_json
from ..models import build_model
from ..train import distributed
from ..train.checkpoint import checkpointing, fault_point
from .common import load_and_split, model_params, reusable_graph, seed_everything
from .report import results_table, run_title

log = logging.getLogger("hybridrec.experiments")


def run_models(cfg: Config, run_dir: Path, new_items: str | None = None, top_k: int = 20) -> str:
    """Train and evaluate each model of ``cfg.model.name`` (comma-separated) on one split.

    With ``new_items`` (a file of items with text and no interactions), each content-aware
    model also ranks users for every new item into ``new_items_top_users.csv``.
    """
    _, split = load_and_split(cfg)  # logs the load time and the split
    write_json(run_dir / "split.json", split.summary(), default=str)
    write_item_titles(run_dir, split.train)

    per_model = model_params(cfg.model.name, cfg.model.params)
    if new_items is not None:  # checked against the catalogue before any training, not after it
        check_new_items_file(new_items, per_model, split.train.item_vocab)
    dist = distributed.context(cfg.run.device)
    rows, all_results, histories, new_rows, fitted = [], {}, {}, [], {}
    for name in per_model:
        seed_everything(cfg.run.seed)
        model = build_model(
            name, per_model[name], device=cfg.run.device, seed=cfg.run.seed,
            train=cfg.train, eval_batch_size=cfg.eval.batch_size,
        )
        extra = {"dist": dist} if model.distributed else {}
        extra.update(reusable_graph(model, fitted, split.train))  # the hybrid's graph part: the LightGCN above
        t = time.perf_counter()
        with _checkpoints(cfg, run_dir, name, dist) as ckpt:
            model.fit(split.train, split.valid, **extra)
        fit_s = time.perf_counter() - t + (ckpt.earlier_seconds if ckpt is not None else 0.0)
        fitted[name] = model
        if dist is not None and hasattr(model, "trained_pairs"):
            _write_share(run_dir / "ddp", name, dist, model, fit_s)
        t = time.perf_counter()  # a distributed run ranks one share of the users per process
        res = evaluate(model, split, ks=cfg.eval.ks, metrics=cfg.eval.metrics, batch_size=cfg.eval.batch_size,
                       dist=dist if model.distributed else None)
        eval_s = time.perf_counter() - t
        if dist is not None and not dist.is_main:  # the main process writes the results
            continue
        log.info("%s: fit %.1fs, eval %.1fs, %s", name, fit_s, eval_s, res.metrics)
        fault_point("evaluate")
        model.save(run_dir / "models" / name)
        if new_items is not None and model.content_aware:
            new_rows += _rank_users_for_new_items(model, name, new_items, top_k)
        all_results[name] = {**res.to_dict(), "fit_seconds": fit_s, "eval_seconds": eval_s,
                             **({"graph_part": "lightgcn (reused)"} if "graph" in extra else {})}
        if getattr(model, "history", None) is not None:
            histories[name] = model.history.to_dict()
        for group, metrics in res.metrics.items():
            rows.append({"model": name, "group": group, "users": res.n_users[group], **metrics,
                         "fit_s": fit_s, "eval_s": eval_s})

    if dist is not None and not dist.is_main:
        return ""
    write_json(run_dir / "metrics.json", all_results)
    fault_point("write")
    write_json(run_dir / "history.json", histories)
    write_csv(run_dir / "metrics.csv", rows)
    if new_items is not None:
        write_csv(run_dir / "new_items_top_users.csv", new_rows)
    title = run_title(cfg, split, "full ranking, training items masked", sizes=True)
    return title + "\n" + results_table(rows)


def _checkpoints(cfg: Config, run_dir: Path, name: str, dist):
    """The checkpointing block model ``name`` trains in (``run_dir/checkpoints/<name>``);
    none when ``train.checkpoint_every`` is 0 or the run is distributed (every process
    would write the same folder)."""
    if cfg.train.checkpoint_every <= 0 or dist is not None:
        return contextlib.nullcontext(None)
    return checkpointing(run_dir / "checkpoints" / name, cfg.train.checkpoint_every)


def check_new_items_file(path: str, per_model: dict[str, dict], known=None) -> None:
    """Parse ``--new-items`` as each content-aware model of the run will (its text template;
    ids the catalogue already has, when ``known`` is given): every problem of the file is an
    error before training. A model that is not content-aware is an error too."""
    from ..models import model_class
    from ..text.item_text import DEFAULT_TEMPLATE
    from ..text.new_items import parse_new_items, read_new_items

    frame = read_new_items(path)
    aware = [n for n in per_model if model_class(n).content_aware]
    if not aware:
        raise ConfigError(f"--new-items needs a content-aware model (content, hybrid, pinsage); the run trains "
                          f"{', '.join(per_model)}")
    for name in aware:
        parse_new_items(frame, template=per_model[name].get("text_template", DEFAULT_TEMPLATE), known=known,
                        where=str(path))


def write_item_titles(run_dir: Path, data) -> None:
    """``items.csv`` (item_id, title) beside the saved models, so ``hybridrec recommend``
    shows titles; nothing when the data set has no titles."""
    table = data.item_table
    if table is None or "title" not in table.columns or not (table["title"] != "").any():
        return
    write_csv(run_dir / "items.csv", [{"item_id": i, "title": t} for i, t in zip(data.item_vocab.ids, table["title"])])


def _write_share(folder: Path, name: str, dist, model, fit_s: float) -> None:
    """What this process trained on: ``<model>.rank<r>.json`` (pairs per epoch, fit time) and
    ``<model>.rank<r>.safetensors`` (the training-pair indices of its share of epoch 1)."""
    stem = f"{name}.rank{dist.rank}"
    info = {"rank": dist.rank, "world_size": dist.world_size, "fit_seconds": fit_s,
            "pairs_per_epoch": [r["pairs"] for r in model.history.rows]}
    write_json(folder / f"{stem}.json", info)
    save_tensors(folder / f"{stem}.safetensors", {"epoch1_pairs": model.trained_pairs})


def _rank_users_for_new_items(model, name: str, path: str, k: int) -> list[dict]:
    """Top-``k`` users of each new item: rows (model, item_id, rank, user_id, score)."""
    from ..text.new_items import read_new_items

    if not model.content_aware:
        raise ConfigError(f"model {name!r} cannot score new items; use --mode hybrid or --mode cold")
    new = model.new_items(read_new_items(path), where=str(path))
    log.info("%s: ranking users for %d new items from %s", name, len(new), path)
    return [{"model": name, "item_id": item, "rank": r + 1, "user_id": u, "score": float(s)}
            for item, (users, scores) in model.top_users(new, k=k).items()
            for r, (u, s) in enumerate(zip(users, scores))]
