"""Compare mode: every model on the same splits, several seeds, mean and spread, plots.

``python -m hybridrec.run --mode compare`` calls :func:`run_compare`. For each seed it
draws one split (by default the cold-item split, so warm, cold and all items are compared
side by side), trains every model of ``compare.models`` on it, evaluates them by full
ranking on the groups ``all``/``warm``/``cold`` and on item popularity buckets, and times
training and inference. The hybrid is also trained at each blend threshold of
``compare.thresholds`` on the first ``compare.sweep_seeds`` seeds.

Run folder files:

* ``per_seed.csv``: one row per (model, seed, group) with every metric and the timings;
* ``summary.csv`` / ``compare.json``: mean and standard deviation over seeds;
* ``sweep.csv``: Recall/NDCG per blend threshold, seed and group;
* ``metrics_by_model.png``, ``recall_by_popularity.png``, ``threshold_sweep.png``;
* ``jobs/seed<k>/<model>.json``: each (model, seed) result as it completes (with the model
  itself when the candidate protocol ranks with it later); ``per_seed.csv`` is rewritten after
  every seed. A run started again in the same folder (``--resume``) skips finished jobs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Config, ConfigError, TrainConfig, section_from_dict
from ..data import Split
from ..eval import evaluate
from ..eval.candidates import build_candidates, evaluate_candidates, random_reference
from ..eval.groups import default_groups, popularity_buckets
from ..io import write_csv, write_json, write_text
from ..models import build_model, load_model, model_class
from ..models.hybrid import parse_threshold as _parse_blend
from ..models.registry import settings_for
from ..support.progress import progress_bar
from . import plots
from .candidates import check_llm_settings
from .common import check_settings, load_data, reusable_graph, seed_everything, split_data
from .report import SUMMARY_GROUPS, compare_report, fmt_threshold

log = logging.getLogger("hybridrec.compare")


@dataclass
class CompareResult:
    """Everything a compare run measured.

    Attributes:
        rows: one dict per (model, seed, group): metrics, ``users``, ``fit_s``, ``eval_s``.
        sweep: one dict per (threshold, seed, group) of the hybrid's blend sweep.
        candidates: one dict per (model, seed, group) on the candidate protocol (with the
            LLM; every model ranks the same lists).
        info: data set, split, seeds and per-seed split summaries.
        training: one dict per (model, seed) of a trained model: epochs run, the epoch
            kept, and why training stopped.
    """

    rows: list[dict] = field(default_factory=list)
    sweep: list[dict] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    training: list[dict] = field(default_factory=list)

    def summary(self):
        """Mean and standard deviation over seeds, one row per (model, group): a DataFrame."""
        return summarise(self.rows, ["model", "group"])

    def sweep_summary(self):
        return summarise(self.sweep, ["threshold", "group"]) if self.sweep else None

    def candidates_summary(self):
        return summarise(self.candidates, ["model", "group"]) if self.candidates else None


def summarise(rows: list[dict], keys: list[str]):
    """Mean and sample standard deviation of every numeric column over seeds."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    values = [c for c in frame.columns if c not in keys + ["seed"] and frame[c].dtype.kind in "fi"]
    out = frame.groupby(keys, sort=False)[values].agg(["mean", "std"])
    out.columns = [f"{c}_{s}" for c, s in out.columns]
    out.insert(0, "seeds", frame.groupby(keys, sort=False)["seed"].nunique())
    return out.reset_index()


def parse_threshold(t) -> float:
    """A ``compare.thresholds`` entry as a number (``inf`` allowed)."""
    try:
        return _parse_blend(t)
    except ValueError as e:
        raise ConfigError(f"compare.thresholds: {e}") from None


def check_compare_config(cfg: Config) -> dict[str, dict]:
    """Validate the compare section; returns each model's settings (``model.params``
    entries the model takes, then ``compare.params[model]``)."""
    cc = cfg.compare
    if not cc.models:
        raise ConfigError("compare.models is empty; list at least one model, e.g. [popularity, hybrid]")
    if not cc.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in cc.seeds):
        raise ConfigError(f"compare.seeds must be a non-empty list of integers, got {cc.seeds!r}")
    if len(set(cc.seeds)) != len(cc.seeds):
        raise ConfigError(f"compare.seeds repeats a seed: {cc.seeds}")
    if cc.sweep_seeds < 0:
        raise ConfigError("compare.sweep_seeds must be >= 0")
    [parse_threshold(t) for t in cc.thresholds]
    if cc.candidate_seeds < 0:
        raise ConfigError("compare.candidate_seeds must be >= 0")
    unknown = sorted(set(cc.params) - set(cc.models))
    if unknown:
        raise ConfigError(f"compare.params names {unknown}, which are not in compare.models {cc.models}")
    unknown = sorted(set(cc.train) - set(cc.models))
    if unknown:
        raise ConfigError(f"compare.train names {unknown}, which are not in compare.models {cc.models}")
    for name in cc.train:
        model_train(cfg, name)  # unknown keys and out-of-range values fail here
    per_model = {}
    for name in cc.models:
        own = dict(cc.params.get(name) or {})
        where = f"compare.params.{name}"
        if not model_class(name).full_ranking:  # candidate lists only; its model is found before training
            per_model[name] = check_llm_settings(own, where)
        else:
            per_model[name] = {**settings_for(name, cfg.model.params), **check_settings(name, own, where)}
    return per_model


def model_train(cfg: Config, name: str) -> TrainConfig:
    """The training settings of model ``name`` in a comparison: the ``train`` section with
    ``compare.train[name]`` on top (progress bars off: one bar for the whole comparison)."""
    own = cfg.compare.train.get(name) or {}
    if not isinstance(own, dict):
        raise ConfigError(f"compare.train.{name} must be a mapping of train settings, got {own!r}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(own) - fields)
    if bad:
        raise ConfigError(f"compare.train.{name}: {bad} are not train settings; they are {sorted(fields)}")
    return section_from_dict(TrainConfig, {**dataclasses.asdict(cfg.train), **own, "progress": False},
                             f"compare.train.{name}")


def eval_groups(split: Split, ks, buckets) -> dict[str, np.ndarray]:
    """all/warm/cold plus popularity buckets named ``pop <range>`` (buckets with fewer
    than ``max(ks)`` items cannot fill a top-K list and are left out)."""
    k_max = max(ks)
    groups = default_groups(split, split.test.items, k_max)
    counts = split.train.item_counts()
    for name, mask in popularity_buckets(counts, buckets).items():
        if mask.sum() >= k_max:
            groups[f"pop {name}"] = mask
        else:
            log.warning("popularity bucket %s has %d items, fewer than k=%d: left out", name, mask.sum(), k_max)
    return groups


def run_compare(cfg: Config, run_dir: Path, progress: bool = True) -> tuple[CompareResult, str]:
    """Train and evaluate every model of ``cfg.compare`` over its seeds; write the run folder.

    Returns:
        the :class:`CompareResult` and the text report (the mean/std table).
    """
    per_model = check_compare_config(cfg)
    cc = cfg.compare
    thresholds = [parse_threshold(t) for t in cc.thresholds]
    t0 = time.perf_counter()
    data = load_data(cfg)
    result = CompareResult(info={"dataset": cfg.data.dataset, "split": cfg.data.split,
                                 "split_options": cfg.data.split_options, "seeds": list(cc.seeds),
                                 "models": list(cc.models), "splits": {}})
    encoders: dict = {}
    sweep_seeds = list(cc.seeds[:cc.sweep_seeds]) if thresholds else []
    hybrid_params = per_model.get("hybrid") or settings_for("hybrid", cfg.model.params)
    with_llm = [n for n in per_model if not model_class(n).full_ranking]  # candidate lists only
    cand_seeds = list(cc.seeds[:cc.candidate_seeds]) if with_llm else []
    full = {n: p for n, p in per_model.items() if n not in with_llm}
    n_jobs = len(cc.seeds) * len(full) + len(sweep_seeds) * len(thresholds) + len(cand_seeds)
    bar = progress_bar(total=n_jobs, desc="compare", enabled=progress, unit="model")
    for seed in cc.seeds:
        seed_everything(seed)
        split = split_data(cfg, data, seed)
        result.info["splits"][seed] = split.summary()
        groups = eval_groups(split, cfg.eval.ks, cc.buckets)
        jobs = [(name, name, full[name]) for name in full]
        fitted = {}
        if seed in sweep_seeds:
            base = {k: v for k, v in hybrid_params.items() if k != "threshold"}
            jobs += [(f"hybrid@{t:g}", "hybrid", {**base, "threshold": t}) for t in thresholds]
        main_hybrid = None
        seed_dir = run_dir / "jobs" / f"seed{seed}"
        for label, name, params in jobs:
            bar.set_postfix_str(f"seed {seed} {label}")
            job = _finished_job(seed_dir, label)
            if job is not None:  # a resumed run: this (model, seed) finished before
                metrics, fit_s, eval_s = job["metrics"], job["fit_s"], job["eval_s"]
                if seed in cand_seeds and not label.startswith("hybrid@") and (seed_dir / label).is_dir():
                    fitted[label] = (load_model(seed_dir / label, device=cfg.run.device), fit_s)
            elif label.startswith("hybrid@") and main_hybrid is not None and \
                    _same_threshold(main_hybrid[0], params["threshold"]):
                metrics = main_hybrid[1]  # the main hybrid run already is this threshold
                fit_s = eval_s = 0.0
                job = {"metrics": metrics, "fit_s": fit_s, "eval_s": eval_s}
            else:
                metrics, fit_s, eval_s, model = _fit_eval(name, params, split, seed, cfg, groups, encoders, fitted)
                job = {"metrics": metrics, "fit_s": fit_s, "eval_s": eval_s}
                if not label.startswith("hybrid@"):
                    fitted[label] = (model, fit_s)
                    if getattr(model, "history", None) is not None:
                        record = training_record(model, model_train(cfg, name).epochs)
                        graph = fitted.get("lightgcn", (None,))[0]
                        if label != "lightgcn" and graph is not None and model.history is graph.history:
                            record["stop"] = f"graph part is lightgcn's: {record['stop']}"
                        job["training"] = record
                    if seed in cand_seeds:  # the candidate protocol ranks with it later: keep it for a resume
                        model.save(seed_dir / label)
                if label == "hybrid":
                    job["chosen_threshold"] = model.chosen.threshold
            if label == "hybrid":
                main_hybrid = (_parse_blend(job["chosen_threshold"]), metrics)
            if "training" in job:
                result.training.append({"model": label, "seed": seed, **job["training"]})
            write_json(seed_dir / f"{label}.json", job)  # this (model, seed) is done, whatever fails later
            if label.startswith("hybrid@"):
                t = params["threshold"]
                result.sweep += [{"threshold": t, "seed": seed, "group": g, **m}
                                 for g, m in metrics.items() if g in SUMMARY_GROUPS]
            else:
                result.rows += [{"model": label, "seed": seed, "group": g, **m, "fit_s": fit_s, "eval_s": eval_s}
                                for g, m in metrics.items()]
            bar.update(1)
        if seed in cand_seeds:
            bar.set_postfix_str(f"seed {seed} candidate protocol with {', '.join(with_llm)}")
            job = _finished_job(seed_dir, "candidates")
            if job is None:
                job = {"rows": _candidate_protocol(split, seed, cfg, fitted, {n: per_model[n] for n in with_llm})}
                write_json(seed_dir / "candidates.json", job)
            result.candidates += job["rows"]
            bar.update(1)
        write_csv(run_dir / "per_seed.csv", result.rows)  # the results so far, should a later seed fail
    bar.close()
    result.info["seconds"] = time.perf_counter() - t0
    random_row = random_reference(cfg.candidates.n_candidates, cfg.candidates.ks)
    _write(result, cfg, run_dir, random_row)
    return result, compare_report(result, cfg, random_row)


def _finished_job(seed_dir: Path, label: str) -> dict | None:
    """The saved result of a (model, seed) a previous, interrupted run of this folder
    finished (``jobs/seed<k>/<label>.json``, written atomically), or None."""
    path = seed_dir / f"{label}.json"
    if not path.is_file():
        return None
    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.warning("%s is unreadable: running that job again", path)
        return None
    log.info("resumed: %s of seed %s from %s", label, seed_dir.name, path)
    return job


def _candidate_protocol(split, seed, cfg, fitted, llms) -> list[dict]:
    """Every fitted model and each LLM on the same candidate lists of this seed's split."""
    c = cfg.candidates
    cands = build_candidates(split, c.n_candidates, n_users=c.n_users, seed=seed, pool=c.pool)
    scorers = dict(fitted)
    for name, params in llms.items():
        t = time.perf_counter()
        scorers[name] = (build_model(name, params, device=cfg.run.device, seed=seed).fit(split.train),
                         time.perf_counter() - t)
    rows = []
    for label, (model, fit_s) in scorers.items():
        res = evaluate_candidates(model, cands, ks=c.ks)
        cost = {k: res.info[k] for k in ("prompt_tokens_per_user", "scored_tokens_per_user", "seconds_per_user")
                if k in res.info}
        rows += [{"model": label, "seed": seed, "group": g, "users": res.n_users[g], **m,
                  "fit_s": fit_s, "eval_s": res.info["seconds"], **cost} for g, m in res.metrics.items()]
        log.info("seed %d candidates %s: %s %s", seed, label, res.metrics.get("all"), cost)
    return rows


def training_record(model, max_epochs: int) -> dict:
    """Epochs run, the epoch whose weights were kept, and why training stopped."""
    h = model.history.to_dict()
    ran = len(h["epochs"])
    if h["stopped_early"]:
        stop = "early stop (patience)"
    elif h["best_epoch"] is None:
        stop = "no validation: last epoch"
    elif ran >= max_epochs:
        stop = "reached max epochs"
    else:
        stop = "finished"
    return {"epochs": ran, "best_epoch": h["best_epoch"], "stop": stop}


def _same_threshold(a: float, b: float) -> bool:
    return a == b or (math.isinf(a) and math.isinf(b))


def _fit_eval(name, params, split, seed, cfg, groups, encoders, fitted):
    seed_everything(seed)
    train = model_train(cfg, name)  # the model's recipe; one bar for the whole comparison
    model = build_model(name, params, device=cfg.run.device, seed=seed, train=train,
                        eval_batch_size=cfg.eval.batch_size)
    t = time.perf_counter()
    if model.content_aware:  # one encoder per text model, shared
        key = (model.text_model, model.on_empty)
        if key not in encoders:
            encoders[key] = model.text_encoder(progress=False)
        extra = reusable_graph(model, {n: m for n, (m, _) in fitted.items()}, split.train)  # not trained twice
        model.fit(split.train, split.valid, encoder=encoders[key], **extra)
    else:
        model.fit(split.train, split.valid)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    res = evaluate(model, split, ks=cfg.eval.ks, metrics=cfg.eval.metrics, batch_size=cfg.eval.batch_size,
                   groups=groups, device=cfg.run.device)
    eval_s = time.perf_counter() - t
    metrics = {g: {"users": res.n_users[g], **m} for g, m in res.metrics.items()}
    log.info("seed %d %s %s: fit %.1fs, eval %.1fs, %s", seed, name, params, fit_s, eval_s,
             {g: m for g, m in metrics.items() if g in SUMMARY_GROUPS})
    return metrics, fit_s, eval_s, model


def _write(result: CompareResult, cfg: Config, run_dir: Path, random_row: dict[str, float]) -> None:
    summary = result.summary()
    write_csv(run_dir / "per_seed.csv", result.rows)
    write_text(run_dir / "summary.csv", summary.to_csv(index=False))
    doc = {**result.info, "summary": summary.to_dict(orient="records")}
    if result.sweep:
        write_csv(run_dir / "sweep.csv", [{**r, "threshold": fmt_threshold(r["threshold"])} for r in result.sweep])
        doc["sweep"] = result.sweep_summary().assign(
            threshold=lambda f: f["threshold"].map(fmt_threshold)).to_dict(orient="records")
    if result.candidates:
        cand = result.candidates_summary()
        write_csv(run_dir / "candidates.csv", result.candidates)
        doc["candidates"] = {"n_candidates": cfg.candidates.n_candidates, "n_users": cfg.candidates.n_users,
                             "seeds": list(cfg.compare.seeds[:cfg.compare.candidate_seeds]),
                             "random": random_row, "summary": cand.to_dict(orient="records")}
    if result.training:
        write_csv(run_dir / "training.csv", result.training)
        doc["training"] = result.training
    write_json(run_dir / "compare.json", doc, default=_json_default)
    title = f"{cfg.data.dataset}, {cfg.data.split} split, seeds {list(cfg.compare.seeds)}"
    k = max(cfg.eval.ks)
    plots.metrics_by_model(summary, run_dir / "metrics_by_model.png", title=title, k=k)
    plots.recall_by_popularity(summary, run_dir / "recall_by_popularity.png", title=title, k=k)
    if result.candidates:
        c = cfg.candidates
        plots.metrics_by_model(result.candidates_summary(), run_dir / "candidates_by_model.png",
                               title=f"{title}; {c.n_candidates} candidates per user, {c.n_users or 'all'} users",
                               k=max(c.ks), metrics=("ndcg", "hitrate"),
                               reference=random_row)
    if result.sweep:
        sweep_title = f"{cfg.data.dataset}, {cfg.data.split} split, seeds {list(cfg.compare.seeds[:cfg.compare.sweep_seeds])}"
        plots.threshold_sweep(result.sweep_summary(), run_dir / "threshold_sweep.png", title=sweep_title, k=k)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)
