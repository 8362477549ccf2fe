"""GNN vs content vs hybrid vs prompted and fine-tuned LLM rankers on the same candidate lists,
and the two-stage pipeline.

Split: cold-item (``--cold-fraction`` of the items held out with all their interactions), the
other items leave-last-out by time: each user's last interaction is test, the one before it
validation (``--n-valid``), and ``--valid-cold-fraction`` more items are held out into
validation, so the hybrid calibrates on cold items (the ``--mode compare`` recipe). Each
sampled test user's target is their held-out test item, a cold item for some users and a
warm one for others. Candidate lists: the target plus ``N - 1`` items the user never
touched, drawn uniformly; the same lists for every row.

Rows:

* ``popularity``, ``content``, ``lightgcn``, ``hybrid``: the graph models train up to
  ``--epochs`` (100) at ``--lr`` 0.01 with early stopping on the validation part
  (``--patience`` 10 on recall@20) and keep their best epoch, as ``--mode compare`` does.
* ``llm plain``: the prompted ranker; the prompt lists the user's last 20 training titles.
* ``llm graph``: the graph-aware template, each candidate with its co-occurrence evidence.
* ``llm fine-tuned``: the plain prompt after LoRA fine-tuning (:func:`hybridrec.llm.finetune`)
  on candidate lists built from the training part only (``--ft-*`` flags).
* ``llm fine-tuned + graph``: fine-tuned with the graph template and evidence, since training
  and scoring must see the same prompt.
* ``... [label]`` (``--llm-rows plain-label graph-label ft-label ft-graph-label``): the same four
  with an answer that is the candidate's label alone (``[3]``, the LlamaRec verbalizer), scored
  by its summed log-likelihood, so a candidate's score is the model's probability of choosing
  its label and fine-tuning trains that choice rather than copying a title from the prompt.

Per row: NDCG@10, HitRate@10 and MRR for all, warm-target and cold-target lists, each with a
95% percentile-bootstrap interval over users (``--bootstrap`` resamples, seeded); cost per
user (seconds; prompt and scored tokens for the LLM) and the fine-tuning cost; next to the
exact expectation of a random ranking. Two-stage: stage 1 retrieves the top ``--m`` unseen
items from the hybrid's embeddings (faiss exact inner-product search), stage 2 reorders them
with LightGCN or the LLM rows of ``--two-stage-llm``.

Results go to ``benchmarks/results/llm-candidates-<dataset>/`` (or ``--out``):
``results.json`` and ``table.md`` (with the machine, command and seed); ``rows/`` holds each
finished row's per-user scores (``<row>.safetensors``) and summary (``<row>.json``), written as
the row finishes, so ``--resume`` after an interruption redoes at most the row that was
running (rows whose settings changed are redone). Fine-tuning writes
``finetune-plain/`` and ``finetune-graph/`` (``-label`` for the label rows; ``adapter/``, ``finetune.json``, ``checkpoint/``)
and continues from its checkpoint on a rerun (``--ft-restart`` starts over). The fitted
models and adapters are kept out of git by the folder's ``.gitignore``.

Usage::

    python benchmarks/llm_candidates.py --dataset ml-latest-small                  # hours on a CPU
    python benchmarks/llm_candidates.py --dataset ml-latest-small --resume         # after an interruption
    python benchmarks/llm_candidates.py --dataset ml-latest-small --device cuda    # bfloat16 LLM on a GPU
    python benchmarks/llm_candidates.py --dataset synthetic --users 20 --llm <folder> --ft-steps 3 --out /tmp/x
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hybridrec.config import TrainConfig  # noqa: E402
from hybridrec.data import load_dataset, make_split  # noqa: E402
from hybridrec.eval.candidates import (  # noqa: E402
    build_candidates, evaluate_candidates, random_reference, target_ranks,
)
from hybridrec.eval.twostage import two_stage_evaluate  # noqa: E402
from hybridrec.experiments.common import seed_everything  # noqa: E402
from hybridrec.experiments.compare import training_record  # noqa: E402
from hybridrec.experiments.modes import CONVERGE  # noqa: E402
from hybridrec.io import save_tensors, write_json, write_text  # noqa: E402
from hybridrec.llm import FineTuneConfig, LLMRanker, finetune  # noqa: E402
from hybridrec.models import build_model, load_model  # noqa: E402

KS = (1, 5, 10)
#: metrics given an interval, per user: the target's rank r gives NDCG@10 = [r <= 10] / log2(r + 1),
#: HitRate@10 = [r <= 10], MRR = 1 / r
INTERVAL_METRICS = ("ndcg@10", "hitrate@10", "mrr")
GROUPS = ("all", "warm", "cold")
GRAPH_ROWS = {"popularity": {}, "content": {}, "lightgcn": {"dim": 64, "n_layers": 3},
              "hybrid": {"dim": 64, "n_layers": 3}}
#: --llm-rows name -> (row name, graph-aware prompt, fine-tuned, label answer); the ``-label`` rows
#: answer with the candidate's label alone (the ``*_label`` templates, summed log-likelihood)
LLM_ROWS = {"plain": ("llm plain", False, False, False), "graph": ("llm graph", True, False, False),
            "ft": ("llm fine-tuned", False, True, False), "ft-graph": ("llm fine-tuned + graph", True, True, False)}
LLM_ROWS.update({f"{k}-label": (f"{name} [label]", graph, ft, True) for k, (name, graph, ft, _) in list(LLM_ROWS.items())})


# -- intervals and per-user metrics ------------------------------------------------------
def bootstrap_interval(values, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (one value per user).

    Draws ``resamples`` samples of ``n`` users with replacement and takes the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of their means:

    .. math:: \\bar x^{(b)} = \\frac{1}{n} \\sum_{j=1}^{n} x_{I_{bj}},\\quad I_{bj} \\sim U\\{1..n\\},
        \\qquad [\\,q_{0.025}(\\bar x^{(\\cdot)}),\\ q_{0.975}(\\bar x^{(\\cdot)})\\,]

    Seeded by ``seed`` alone, so every row of a table resamples the same users (its intervals
    are comparable, and equal values give equal intervals). ``(nan, nan)`` for no values.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(int(resamples))
    for s in range(0, len(means), 500):  # bounded memory: 500 x n indices at a time
        idx = rng.integers(0, x.size, size=(min(500, len(means) - s), x.size))
        means[s:s + len(idx)] = x[idx].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def per_user_metrics(scores: torch.Tensor, target_pos: torch.Tensor) -> dict[str, np.ndarray]:
    """Each user's NDCG@10, HitRate@10 and MRR from the target's rank (ties to the one listed first)."""
    r = target_ranks(scores, target_pos).numpy().astype(np.float64)
    return {"ndcg@10": np.where(r <= 10, 1.0 / np.log2(r + 1), 0.0), "hitrate@10": (r <= 10).astype(np.float64),
            "mrr": 1.0 / r}


def summarise(scores: np.ndarray, cands, resamples: int, seed: int) -> dict:
    """Group means (by :func:`evaluate_candidates`) and per-user bootstrap intervals of a row's scores."""
    s = torch.as_tensor(scores, dtype=torch.float64)
    res = evaluate_candidates(lambda users, items: s, cands, ks=KS)
    values = per_user_metrics(s, cands.target_pos)
    cold = cands.target_cold.numpy().astype(bool)
    masks = {"all": np.ones_like(cold), "warm": ~cold, "cold": cold}
    intervals, stderr = {}, {}
    for g, m in masks.items():
        if not m.any():
            continue
        for k in INTERVAL_METRICS:  # the per-user values must average to the evaluator's means
            assert abs(values[k][m].mean() - res.metrics[g][k]) < 1e-9, (g, k)
        intervals[g] = {k: bootstrap_interval(values[k][m], resamples, seed=seed) for k in INTERVAL_METRICS}
        stderr[g] = {k: float(values[k][m].std(ddof=1) / math.sqrt(m.sum())) if m.sum() > 1 else float("nan")
                     for k in INTERVAL_METRICS}
    return {"metrics": res.metrics, "users": res.n_users, "intervals": intervals, "stderr": stderr}


# -- scoring and the saved rows -----------------------------------------------------------
def score_lists(model, cands, batch_size: int = 1024) -> dict[str, np.ndarray]:
    """A model's ``[U, N]`` scores of the candidate lists and its cost per user."""
    if isinstance(model, LLMRanker):
        out = model.score_candidates(cands.users, cands.items)
        return {"scores": out.scores.double().numpy(), "seconds": out.seconds.numpy(),
                "prompt_tokens": out.prompt_tokens.numpy(), "scored_tokens": out.scored_tokens.numpy()}
    t, rows = time.perf_counter(), []
    with torch.no_grad():
        for start in range(0, len(cands), batch_size):
            s = model.score_users(cands.users[start:start + batch_size].to(model.device))
            rows.append(s.gather(1, cands.items[start:start + batch_size].to(s.device)).double().cpu())
    n = len(cands)
    return {"scores": torch.cat(rows).numpy(), "seconds": np.full(n, (time.perf_counter() - t) / n)}


def lists_digest(cands) -> str:
    """SHA-256 of the candidate lists (users, items, target positions): rows are reused only on these."""
    h = hashlib.sha256()
    for t in (cands.users, cands.items, cands.target_pos, cands.target_cold.long()):
        h.update(t.cpu().numpy().astype(np.int64).tobytes())
    return h.hexdigest()


def plain(obj):
    """``obj`` as JSON reads it back (tuples as lists), to compare a spec with a saved one."""
    return json.loads(json.dumps(obj, default=str))


def load_row(folder: Path, slug: str, spec: dict) -> dict | None:
    """A finished row saved under ``folder/rows`` with the same spec, or ``None``."""
    from safetensors.torch import load_file

    meta, tensors = folder / "rows" / f"{slug}.json", folder / "rows" / f"{slug}.safetensors"
    if not meta.is_file() or not tensors.is_file():
        return None
    row = json.loads(meta.read_text())
    if row.get("spec") != plain(spec):
        print(f"  rows/{slug}: saved with other settings, redoing it", flush=True)
        return None
    row["per_user"] = {k: v.numpy() for k, v in load_file(str(tensors)).items()}
    return row


def save_row(folder: Path, slug: str, row: dict) -> None:
    """The per-user tensors first, then the JSON that marks the row finished."""
    save_tensors(folder / "rows" / f"{slug}.safetensors",
                 {k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in row["per_user"].items()})
    write_json(folder / "rows" / f"{slug}.json", {k: v for k, v in row.items() if k != "per_user"})


def slug_of(name: str) -> str:
    return name.replace(" + ", "-").replace(" ", "-").replace("[", "").replace("]", "")


# -- the models ---------------------------------------------------------------------------
def n_params(model) -> int | None:
    if isinstance(model, LLMRanker):
        return sum(p.numel() for p in model.llm[0].parameters())
    if callable(getattr(model, "embeddings", None)):
        u, i = model.embeddings()
        extra = getattr(model, "_proj_weight", None)
        return int(u.numel() + i.numel() + (extra.numel() if extra is not None else 0))
    return None


def train_config(args) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, lr=args.lr, l2=1e-4, batch_size=1024, patience=args.patience,
                       eval_every=1 if args.n_valid else 0, progress=False)


def finetune_config(args) -> FineTuneConfig:
    return FineTuneConfig(steps=args.ft_steps, lr=args.ft_lr, batch_size=args.ft_batch, grad_accum=args.ft_grad_accum,
                          warmup=args.ft_warmup, lora_r=args.ft_lora_r, listwise=args.ft_listwise,
                          n_candidates=args.candidates, negatives=args.ft_negatives,
                          examples_per_user=args.ft_examples_per_user, max_train_users=args.ft_users,
                          checkpoint_every=args.ft_checkpoint_every, seed=args.seed)


def ranker_settings(args, kind: str) -> dict:
    """An LLM row's ranker settings: the plain or graph template, answering with the label
    and title (mean log-likelihood, the ranker's defaults) or, for the ``-label`` rows, the
    label alone (the ``*_label`` templates, summed log-likelihood)."""
    _, graph, _, label = LLM_ROWS[kind]
    prompt = {"template": "rank_candidates_graph", "evidence": args.graph_evidence} if graph else {}
    if graph and "rank" in args.graph_evidence:
        prompt["evidence_model"] = args.evidence_model  # the name here; make_ranker passes the fitted model
    if label:
        prompt = {**prompt, "template": prompt.get("template", "rank_candidates") + "_label", "normalize": "sum"}
    return {"history_len": args.history_len, "seed": args.seed, "dtype": args.dtype, **prompt}


def llm_spec(args, kind: str, digest: str) -> dict:
    ft = LLM_ROWS[kind][2]
    return {"lists": digest, "llm": args.llm, "device": args.device, "ranker": ranker_settings(args, kind),
            "finetune": finetune_config(args).to_dict() if ft else None}


def fit_graph_model(args, split, name: str):
    """A graph row's model fitted as its row is (same seed, settings and data: the same model on the CPU)."""
    seed_everything(args.seed)
    model = build_model(name, GRAPH_ROWS[name], device=args.device, seed=args.seed, train=train_config(args))
    return model.fit(split.train, split.valid)


def fitted_graph_model(args, split, out: Path, models: dict, name: str):
    """LightGCN or the hybrid as fitted by this run, or as saved under ``out/models`` by an
    earlier run whose row was reused, or fitted again (and saved) when that folder is gone."""
    if name not in models:
        folder = out / "models" / name
        if (folder / "config.json").is_file():
            models[name] = load_model(folder, device=args.device)
        else:
            print(f"  {name}: its row was reused but {folder} is missing; fitting it again", flush=True)
            models[name] = fit_graph_model(args, split, name)
            models[name].save(folder)
    return models[name]


def make_ranker(args, kind: str, split, out: Path, models: dict) -> tuple[LLMRanker, dict | None]:
    """The row's ranker, fitted on the training part; fine-tuned (or its adapters reused,
    or its fine-tuning resumed) for the fine-tuned rows. A graph row with rank evidence
    ranks by the fitted ``--evidence-model``."""
    _, graph, ft, label = LLM_ROWS[kind]
    settings = ranker_settings(args, kind)
    if "evidence_model" in settings:
        settings["evidence_model"] = fitted_graph_model(args, split, out, models, settings["evidence_model"])
    ranker = LLMRanker(args.llm, device=args.device, progress=sys.stderr.isatty(), **settings).fit(split.train)
    if not ft:
        return ranker, None
    folder = out / f"finetune-{'graph' if graph else 'plain'}{'-label' if label else ''}"
    try:
        result = finetune(ranker, split.train, finetune_config(args), folder, resume=not args.ft_restart)
    except ValueError as e:
        if "checkpoint" not in str(e):
            raise
        raise SystemExit(f"{e}\n(here: --ft-restart fine-tunes {folder} from scratch)") from None
    cost = {k: result.cost[k] for k in ("wall_minutes", "steps", "steps_this_run", "examples", "examples_trained",
                                        "tokens_trained", "tokens_per_step", "seconds_per_step", "device", "dtype",
                                        "trainable_parameters", "first_loss", "last_loss")}
    return ranker, {**cost, "folder": str(folder.relative_to(out)), "resumed_from": result.resumed_from}


# -- the run ------------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument("--users", type=int, default=300, help="sampled test users (the LLM costs seconds each)")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--m", type=int, default=20, help="items stage 1 retrieves per user")
    ap.add_argument("--cold-fraction", type=float, default=0.2)
    ap.add_argument("--n-valid", type=int, default=1, help="validation items per user (0: no early stopping)")
    ap.add_argument("--valid-cold-fraction", type=float, default=0.05, help="items held out cold into validation")
    ap.add_argument("--epochs", type=int, default=CONVERGE["epochs"],
                    help="most epochs of the graph models (default: --mode compare's, modes.CONVERGE)")
    ap.add_argument("--lr", type=float, default=CONVERGE["lr"])
    ap.add_argument("--patience", type=int, default=CONVERGE["patience"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of the intervals")
    ap.add_argument("--llm", default=None, help="LLM folder or hub name (default: offline SmolLM2-135M-Instruct)")
    ap.add_argument("--llm-rows", nargs="*", default=[k for k in LLM_ROWS if not k.endswith("-label")],
                    choices=list(LLM_ROWS), help="LLM rows to run (default: the four answering with label and title)")
    ap.add_argument("--two-stage-llm", nargs="*", default=["plain"], choices=list(LLM_ROWS),
                    help="LLM rows that also rerank stage 1 (none: no LLM two-stage row)")
    ap.add_argument("--history-len", type=int, default=20, help="training titles in an LLM prompt")
    ap.add_argument("--graph-evidence", default="cooccurrence", choices=["cooccurrence", "cooccurrence+rank"],
                    help="what the graph rows show per candidate: co-occurrence counts, or also its rank under "
                         "--evidence-model")
    ap.add_argument("--evidence-model", default="hybrid", choices=["lightgcn", "hybrid"],
                    help="the fitted model whose rank the graph rows show with --graph-evidence cooccurrence+rank")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                    help="LLM dtype (default: float32 on CPU, bfloat16 on GPU)")
    ft = ap.add_argument_group("fine-tuning (the fine-tuned rows)")
    ft.add_argument("--ft-steps", type=int, default=300)
    ft.add_argument("--ft-users", type=int, default=None, help="training users sampled (default: all)")
    ft.add_argument("--ft-lr", type=float, default=5e-4)
    ft.add_argument("--ft-batch", type=int, default=4)
    ft.add_argument("--ft-grad-accum", type=int, default=1)
    ft.add_argument("--ft-warmup", type=int, default=10)
    ft.add_argument("--ft-lora-r", type=int, default=8)
    ft.add_argument("--ft-listwise", type=float, default=0.0)
    ft.add_argument("--ft-examples-per-user", type=int, default=4)
    ft.add_argument("--ft-negatives", default="train", choices=["train", "all"])
    ft.add_argument("--ft-checkpoint-every", type=int, default=25)
    ft.add_argument("--ft-restart", action="store_true", help="fine-tune from scratch, not from the checkpoint")
    ap.add_argument("--resume", action="store_true", help="reuse the finished rows saved under rows/")
    ap.add_argument("--out", type=Path, default=None)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("hybridrec.llm").setLevel(logging.INFO)  # fine-tuning: steps, resumption, cost
    out = args.out or REPO / "benchmarks" / "results" / f"llm-candidates-{args.dataset}"
    (out / "rows").mkdir(parents=True, exist_ok=True)
    write_text(out / ".gitignore", "# fitted models, adapters and fine-tuning checkpoints: rebuilt by a run\n"
                                   "models/\nfinetune-*/adapter/\nfinetune-*/checkpoint/\n")
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads, device {args.device}"
               + (f" ({torch.cuda.get_device_name(args.device)})" if torch.device(args.device).type == "cuda" else ""))
    print("machine:", machine)
    started = time.perf_counter()

    data = load_dataset(args.dataset)
    split = make_split(data, "cold_item", cold_fraction=args.cold_fraction, base="leave_last_out", n_test=1,
                       n_valid=args.n_valid, valid_cold_fraction=args.valid_cold_fraction if args.n_valid else 0.0,
                       seed=args.seed)
    cands = build_candidates(split, args.candidates, n_users=args.users, seed=args.seed)
    digest, n_cold = lists_digest(cands), int(cands.target_cold.sum())
    print(f"{split.summary()}\n{len(cands)} lists of {args.candidates}: {n_cold} cold targets, "
          f"{len(cands) - n_cold} warm", flush=True)

    rows, models, rankers = {}, {}, {}
    train = train_config(args)
    for name, params in GRAPH_ROWS.items():
        spec = {"lists": digest, "model": name, "params": params, "train": dataclasses.asdict(train),
                "device": args.device}
        row = load_row(out, name, spec) if args.resume else None
        if row is None:
            t = time.perf_counter()
            model = fit_graph_model(args, split, name)
            fit_s = time.perf_counter() - t
            per_user = score_lists(model, cands)
            record = training_record(model, train.epochs) if getattr(model, "history", None) else None
            if name in ("lightgcn", "hybrid"):  # the two-stage pipeline reuses them after a resume
                model.save(out / "models" / name)
            row = {"name": name, "spec": spec, "fit_s": fit_s, "params": n_params(model), "training": record,
                   "per_user": per_user}
            save_row(out, name, row)
            models[name] = model
        rows[name] = row
        report_row(row, cands, args)

    for kind in args.llm_rows:
        name = LLM_ROWS[kind][0]
        spec = llm_spec(args, kind, digest)
        row = load_row(out, slug_of(name), spec) if args.resume else None
        if row is None:
            t = time.perf_counter()
            ranker, ft_cost = make_ranker(args, kind, split, out, models)
            fit_s = time.perf_counter() - t
            per_user = score_lists(ranker, cands)
            row = {"name": name, "spec": spec, "fit_s": fit_s, "params": n_params(ranker),
                   "settings": ranker.settings(), "llm_dtype": str(next(ranker.llm[0].parameters()).dtype),
                   "finetune": ft_cost, "per_user": per_user}
            save_row(out, slug_of(name), row)
            if kind in args.two_stage_llm:
                rankers[kind] = ranker
        rows[name] = row
        report_row(row, cands, args)

    two_stage = run_two_stage(args, split, cands, digest, out, rows, models, rankers)
    doc = results_doc(args, machine, split, cands, rows, two_stage, time.perf_counter() - started)
    write_json(out / "results.json", doc)
    table = render(doc)
    write_text(out / "table.md", table + "\n")
    print(table)


def report_row(row: dict, cands, args) -> None:
    """Summarise a row (means, intervals, cost) into ``row`` and print one line."""
    row.update(summarise(row["per_user"]["scores"], cands, args.bootstrap, args.seed))
    pu = row["per_user"]
    row["cost"] = {"seconds_per_user": float(np.mean(pu["seconds"])), "seconds_total": float(np.sum(pu["seconds"]))}
    if "prompt_tokens" in pu:
        row["cost"].update(prompt_tokens_per_user=float(np.mean(pu["prompt_tokens"])),
                           scored_tokens_per_user=float(np.mean(pu["scored_tokens"])))
    cells = "  ".join(f"{g} {row['metrics'][g]['ndcg@10']:.4f} [{lo:.3f}, {hi:.3f}]"
                      for g, iv in row["intervals"].items() for lo, hi in [iv["ndcg@10"]])
    print(f"{row['name']:>24}: NDCG@10 {cells}  ({row['cost']['seconds_per_user']:.4f} s/user)", flush=True)


def run_two_stage(args, split, cands, digest, out, rows, models, rankers) -> dict:
    """Stage 1 from the hybrid's embeddings, reranked by LightGCN and the chosen LLM rows;
    each pipeline saved under rows/ as it finishes."""
    def graph_model(name):
        return fitted_graph_model(args, split, out, models, name)

    pipelines = [("hybrid only", None), ("hybrid -> lightgcn", "lightgcn")]
    pipelines += [(f"hybrid -> {LLM_ROWS[k][0]}", k) for k in args.two_stage_llm]
    results = {}
    for label, reranker in pipelines:
        spec = {"lists": digest, "m": args.m, "retriever": rows["hybrid"]["spec"],
                "reranker": None if reranker is None else rows["lightgcn"]["spec"] if reranker == "lightgcn"
                else llm_spec(args, reranker, digest)}
        slug = "two-stage-" + slug_of(label.replace(" -> ", " "))
        meta = out / "rows" / f"{slug}.json"
        if args.resume and meta.is_file() and json.loads(meta.read_text()).get("spec") == plain(spec):
            results[label] = json.loads(meta.read_text())["result"]
        else:
            if reranker in LLM_ROWS and reranker not in rankers:
                rankers[reranker] = make_ranker(args, reranker, split, out, models)[0]
            model = None if reranker is None else graph_model("lightgcn") if reranker == "lightgcn" \
                else rankers[reranker]
            r = two_stage_evaluate(graph_model("hybrid"), model, split, cands.users, cands.targets, m=args.m, ks=KS)
            results[label] = r.to_dict()
            write_json(meta, {"spec": spec, "result": results[label]})
        t = results[label]
        print(f"two-stage {label:>32}: stage-1 recall@{args.m} {t['stage1_recall']:.4f}  "
              f"ndcg@10 {t['metrics']['ndcg@10']:.4f}  hitrate@10 {t['metrics']['hitrate@10']:.4f}", flush=True)
    return results


def results_doc(args, machine, split, cands, rows, two_stage, seconds) -> dict:
    keep = ("name", "metrics", "intervals", "stderr", "users", "cost", "fit_s", "params", "training", "finetune",
            "settings", "llm_dtype")
    return {"dataset": args.dataset, "machine": machine, "seed": args.seed,
            "command": " ".join(["python benchmarks/llm_candidates.py", *(a for a in args.argv if a != "--resume")]),
            "resumed": args.resume,
            "wall_minutes_this_run": seconds / 60,
            "split": split.summary(),
            "candidates": {"n": args.candidates, "users": len(cands), "cold_targets": int(cands.target_cold.sum())},
            "interval": {"method": "percentile bootstrap of the mean over users", "resamples": args.bootstrap,
                         "level": 0.95, "seed": args.seed},
            "graph_training": {"epochs": args.epochs, "lr": args.lr, "patience": args.patience,
                               "n_valid": args.n_valid, "valid_cold_fraction": args.valid_cold_fraction},
            "random": random_reference(args.candidates, KS),
            "models": {name: {k: row.get(k) for k in keep} for name, row in rows.items()},
            "two_stage": two_stage, "m": args.m}


# -- the table ------------------------------------------------------------------------------
def _cell(row: dict, group: str, metric: str = "ndcg@10") -> str:
    m = row["metrics"].get(group, {}).get(metric)
    if m is None or m != m:
        return "-"
    lo, hi = row["intervals"][group][metric]
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def render(doc: dict) -> str:
    c, r = doc["candidates"], doc["random"]
    iv = doc["interval"]
    lines = [f"{doc['dataset']}, cold-item split (seed {doc['seed']}), {c['users']} users x {c['n']} candidates "
             f"({c['cold_targets']} cold targets, {c['users'] - c['cold_targets']} warm)", "",
             f"Machine: {doc['machine']}", "", f"Command: `{doc['command']}`", "",
             f"Brackets: 95% {iv['method']} ({iv['resamples']} resamples, seed {iv['seed']}). "
             f"Random: the exact expectation of a random ranking.", "",
             "| model | params | NDCG@10 all | NDCG@10 warm | NDCG@10 cold | HitRate@10 all | MRR all | "
             "s/user | prompt tokens/user | scored tokens/user |",
             "|---|---|---|---|---|---|---|---|---|---|",
             f"| random (expected) | - | {r['ndcg@10']:.3f} | {r['ndcg@10']:.3f} | {r['ndcg@10']:.3f} | "
             f"{r['hitrate@10']:.3f} | {r['mrr']:.3f} | - | - | - |"]
    for name, row in doc["models"].items():
        p = row.get("params")
        params = "-" if not p else f"{p / 1e6:.1f}M" if p >= 1e5 else f"{p / 1e3:.1f}k"
        cost = row["cost"]
        tokens = [f"{cost[k]:.0f}" if k in cost else "-" for k in ("prompt_tokens_per_user", "scored_tokens_per_user")]
        spu = f"{cost['seconds_per_user']:.2f}" if "prompt_tokens_per_user" in cost else f"{cost['seconds_per_user']:.5f}"
        lines.append(f"| {name} | {params} | {_cell(row, 'all')} | {_cell(row, 'warm')} | {_cell(row, 'cold')} | "
                     f"{_cell(row, 'all', 'hitrate@10')} | {_cell(row, 'all', 'mrr')} | {spu} | "
                     f"{tokens[0]} | {tokens[1]} |")
    above = {name: [g for g in GROUPS if g in row["intervals"] and row["intervals"][g]["ndcg@10"][0] > r["ndcg@10"]]
             for name, row in doc["models"].items()}
    lines += ["", "NDCG@10 interval entirely above random: " + ("; ".join(
        f"{name} ({', '.join(gs)})" for name, gs in above.items() if gs) or "none")]
    ft = {name: row["finetune"] for name, row in doc["models"].items() if row.get("finetune")}
    if ft:
        lines += ["", "Fine-tuning (LoRA, candidate lists from the training part only):", "",
                  "| model | steps | examples trained | tokens | minutes | s/step | trainable params | loss first -> last |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, f in ft.items():
            lines.append(f"| {name} | {f['steps']} | {f['examples_trained']} | {f['tokens_trained']:,} | "
                         f"{f['wall_minutes']:.1f} | {f['seconds_per_step']:.1f} | {f['trainable_parameters'] / 1e6:.2f}M | "
                         f"{f['first_loss']:.3f} -> {f['last_loss']:.3f} |")
    trained = {name: row["training"] for name, row in doc["models"].items() if row.get("training")}
    if trained:
        lines += ["", "Graph models: " + "; ".join(f"{n} kept epoch {t['best_epoch']} of {t['epochs']} ({t['stop']})"
                                                  for n, t in trained.items())]
    lines += ["", f"Two-stage (stage 1: hybrid embeddings, faiss exact search, top {doc['m']} unseen items):", "",
              f"| pipeline | stage-1 recall@{doc['m']} | NDCG@10 | HitRate@10 | MRR |", "|---|---|---|---|---|"]
    for label, t in doc["two_stage"].items():
        lines.append(f"| {label} | {t['stage1_recall']:.4f} | {t['metrics']['ndcg@10']:.4f} | "
                     f"{t['metrics']['hitrate@10']:.4f} | {t['metrics']['mrr']:.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
