"""``--mode llm``: the prompt-based LLM ranker on the candidate-ranking protocol.

Load -> split (temporal leave-last-out by default) -> candidate lists for a seeded sample of
test users (the held-out item plus N - 1 never-seen items) -> the LLM ranks each list ->
the same lists are ranked by the baselines (``candidates.baselines``) -> one table, with
the random-ranking expectation and the LLM's cost per user (prompt tokens, scored tokens,
seconds). Run folder: ``candidates/`` (the lists, safetensors + JSON), ``metrics.json``,
``metrics.csv``, ``config.yaml``, ``run.log``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..config import Config, ConfigError
from ..eval.candidates import build_candidates, evaluate_candidates, random_reference
from ..io import write_csv, write_json
from ..models import build_model, model_class
from ..models.registry import settings_for
from .common import check_settings, load_and_split
from .report import results_table, run_title

log = logging.getLogger("hybridrec.llm")


def check_llm_settings(params: dict, where: str) -> dict:
    """The LLM ranker's ``params`` checked, and its model found (before any training)."""
    from ..llm.loading import check_available

    params = check_settings("llm", params, where)
    check_available(params.get("model"))
    return params


def check_llm_config(cfg: Config) -> None:
    c = cfg.candidates
    check_llm_settings(cfg.model.params, "model.params")
    if c.n_candidates < 2:
        raise ConfigError(f"candidates.n_candidates must be >= 2, got {c.n_candidates}")
    if c.n_users is not None and c.n_users < 1:
        raise ConfigError(f"candidates.n_users must be >= 1 or null (every test user), got {c.n_users}")
    if not c.ks or any(not 1 <= int(k) <= c.n_candidates for k in c.ks):
        raise ConfigError(f"candidates.ks must lie in 1..{c.n_candidates}, got {c.ks}")
    for name in c.baselines:
        model_class(name)  # unknown names fail here, listing the valid ones


def run_llm(cfg: Config, run_dir: Path) -> str:
    c = cfg.candidates
    _, split = load_and_split(cfg)
    cands = build_candidates(split, c.n_candidates, n_users=c.n_users, seed=cfg.run.seed, pool=c.pool)
    cands.save(run_dir / "candidates")
    n_cold = int(cands.target_cold.sum())
    log.info("%d candidate lists of %d items (%d with a cold target)", len(cands), c.n_candidates, n_cold)

    results, rows = {}, []
    scorers = [("llm", "llm", dict(cfg.model.params))]
    scorers += [(name, name, settings_for(name, cfg.model.params)) for name in c.baselines]
    for label, name, params in scorers:
        t = time.perf_counter()
        model = build_model(name, params, device=cfg.run.device, seed=cfg.run.seed, train=cfg.train,
                            progress=cfg.train.progress)  # common settings: each model takes those it accepts
        model.fit(split.train, split.valid)
        fit_s = time.perf_counter() - t
        res = evaluate_candidates(model, cands, ks=c.ks)
        info = {k: v for k, v in res.info.items() if k != "random"}
        results[label] = {**res.to_dict(), "fit_seconds": fit_s}
        for group, metrics in res.metrics.items():
            rows.append({"model": label, "group": group, "users": res.n_users[group], **metrics,
                         "fit_s": fit_s, "eval_s": info["seconds"]})
        log.info("%s: %s (%s)", label, res.metrics, info)
    random_row = random_reference(c.n_candidates, c.ks)
    rows.append({"model": "random (expected)", "group": "all", "users": len(cands), **random_row,
                 "fit_s": 0.0, "eval_s": 0.0})
    write_json(run_dir / "metrics.json",
               {"protocol": "candidates", "n_candidates": c.n_candidates, "users": len(cands), "cold_targets": n_cold,
                "random": random_row, "models": results}, default=str)
    write_csv(run_dir / "metrics.csv", rows)
    llm = results["llm"]["info"]
    cost = (f"LLM cost per user: {llm.get('prompt_tokens_per_user', float('nan')):.0f} prompt tokens, "
            f"{llm.get('scored_tokens_per_user', float('nan')):.0f} scored tokens, "
            f"{llm.get('seconds_per_user', float('nan')):.2f} s ({cfg.run.device})")
    title = run_title(cfg, split, f"candidate ranking: {len(cands)} users x {c.n_candidates} candidates "
                                  f"({n_cold} cold targets), same lists for every model")
    return "\n".join([title, results_table(rows), cost])
