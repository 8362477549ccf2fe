"""The text a run prints: its title line and results tables (all through
:func:`hybridrec.eval.table.render_table`)."""

from __future__ import annotations

import math

from ..config import Config
from ..data import Split
from ..eval.table import fmt_mean_std, fmt_value, render_table

#: Item groups a comparison summarises.
SUMMARY_GROUPS = ("all", "warm", "cold")
_TIMES = ("fit_s", "eval_s")


def run_title(cfg: Config, split: Split, protocol: str, sizes: bool = False) -> str:
    """``<dataset> | split <kind> (seed s) | [<users>, <items> | ]<protocol>``."""
    size = f"{split.n_users} users, {split.n_items} items | " if sizes else ""
    return f"{cfg.data.dataset} | split {split.kind} (seed {cfg.run.seed}) | {size}{protocol}"


def results_table(rows: list[dict]) -> str:
    """One line per (model, item group), one column per metric, then the timings."""
    if not rows:
        return "(no results)"
    metric_cols = [c for c in rows[0] if c not in ("model", "group", "users") + _TIMES]
    cols = ["model", "group", "users"] + metric_cols + list(_TIMES)
    cells = [[f"{r[c]:.1f}" if c in _TIMES else fmt_value(r.get(c)) for c in cols] for r in rows]
    return render_table(cols, cells)


def fmt_threshold(t: float) -> str:
    return "inf" if math.isinf(t) else f"{t:g}"


def compare_report(result, cfg: Config, random_row: dict[str, float]) -> str:
    """Mean +- std over seeds for every model on all/warm/cold with the timings, then the
    candidate protocol (with the random expectation ``random_row``) and the blend sweep."""
    summary = result.summary()
    metrics = [f"{m}@{k}" for m in cfg.eval.metrics if m != "mrr" for k in cfg.eval.ks]
    metrics += ["mrr"] if "mrr" in cfg.eval.metrics else []
    groups = [g for g in SUMMARY_GROUPS if g in set(summary["group"])]
    n = len(cfg.compare.seeds)
    head = (f"{cfg.data.dataset} | split {cfg.data.split} | seeds {list(cfg.compare.seeds)} | "
            f"full ranking, training items masked | mean +- std over {n} seed{'s' if n > 1 else ''}")
    rows = [[r["model"], r["group"]] + [fmt_mean_std(r[f"{m}_mean"], r[f"{m}_std"]) for m in metrics]
            + [f"{r['fit_s_mean']:.1f}", f"{r['eval_s_mean']:.2f}"]
            for _, r in summary[summary["group"].isin(groups)].iterrows()]
    out = [render_table(["model", "group"] + metrics + list(_TIMES), rows, title=head)]
    if result.training:
        seeds = list(dict.fromkeys(r["seed"] for r in result.training))
        per = {}
        for r in result.training:
            per.setdefault(r["model"], {})[r["seed"]] = r
        rows = []
        for model, by_seed in per.items():
            cells = [f"{by_seed[s]['epochs']} ({by_seed[s]['best_epoch'] if by_seed[s]['best_epoch'] is not None else '-'})"
                     if s in by_seed else "-" for s in seeds]
            rows.append([model] + cells + ["; ".join(dict.fromkeys(r["stop"] for r in by_seed.values()))])
        out.append(render_table(["model"] + [f"seed {s}" for s in seeds] + ["stopped by"], rows, first_left=True,
                                title=f"\ntraining: epochs run (epoch kept), at most {cfg.train.epochs}"))
    cand = result.candidates_summary()
    if cand is not None:
        c = cfg.candidates
        k = max(c.ks)
        cols = [f"ndcg@{k}", f"hitrate@{k}", "mrr"]
        seeds = list(cfg.compare.seeds[:cfg.compare.candidate_seeds])
        rows = [["random (exp.)", "all"] + [f"{random_row[x]:.4f}" for x in cols] + [""]]
        for _, r in cand[cand["group"].isin(groups)].iterrows():
            spu = r.get("seconds_per_user_mean", float("nan"))
            spu = f"{spu:.2f}" if spu == spu else f"{r['eval_s_mean'] / max(r['users_mean'], 1):.4f}"
            rows.append([r["model"], r["group"]] + [fmt_mean_std(r[f"{x}_mean"], r[f"{x}_std"]) for x in cols]
                        + [spu])
        out.append(render_table(["model", "group"] + cols + ["s/user"], rows, title=(
            f"\ncandidate protocol: {c.n_candidates} candidates per user, {c.n_users or 'all'} users, "
            f"seeds {seeds} (same lists for every model)")))
    sweep = result.sweep_summary()
    if sweep is not None:
        k = max(cfg.eval.ks)
        rows = []
        for t in dict.fromkeys(sweep["threshold"]):
            cells = [fmt_threshold(t)]
            for g in groups:
                r = sweep[(sweep["threshold"] == t) & (sweep["group"] == g)]
                cells.append(fmt_mean_std(r.iloc[0][f"recall@{k}_mean"], r.iloc[0][f"recall@{k}_std"])
                             if len(r) else "-")
            rows.append(cells)
        out.append(render_table(["threshold"] + groups, rows, rule=False, title=(
            f"\nhybrid blend threshold sweep, recall@{k} "
            f"(seeds {list(cfg.compare.seeds[:cfg.compare.sweep_seeds])})")))
    return "\n".join(out)
