"""LLM item features: the content model and the hybrid with sentence embeddings vs a causal LM's hidden states.

On a ``cold_item`` split (as ``benchmarks/cold_start.py`` builds it: ``--cold-fraction``
of the items held out of training, the rest split leave-last-out with ``--n-test`` test and
``--n-valid`` validation interactions per user; ``--valid-cold-fraction`` of the items
into validation, default 0), the content model and the hybrid are
fitted twice per seed: with all-MiniLM-L6-v2 item embeddings (``text_model`` default) and
with the mean hidden state of a causal LM (``text_model="llm:<--llm>"``,
:class:`hybridrec.text.LLMItemEncoder`). Each is evaluated on Recall@20 and NDCG@20 over
all test items, warm items only and cold items only; the table gives mean and standard
deviation over ``--seeds``. The hybrid trains as ``--mode hybrid`` does: up to
``--epochs`` 100 at lr 0.01, early stopping on the validation part (patience 10). The hybrid
scores an item with no interactions by its calibrated text part alone, so within the cold
items it ranks them as the content model does unless validation moves the projected-text
weight ``w`` off 0, which needs cold items in validation (``--valid-cold-fraction``, 0 by
default as in ``cold_start.py``; ``--mode hybrid`` uses 0.1). The features then differ in
the hybrid through the all-item ranking (where warm and cold items meet) and the text
profile's share of warm items' scores.

The models encode their items themselves, through ``text_model``, exactly as a user's run
would; each encoder is run once per seed first to time it (later fits read the embedding
cache). Results go to ``benchmarks/results/llm-item-features-<dataset>/``: ``runs.csv``
(one row per model, features, seed and group), ``summary.csv``/``summary.json`` (mean and
spread, the machine, the command, the seeds, the encoders' cost) and ``table.md``.

Usage::

    python benchmarks/llm_item_features.py --dataset ml-latest-small --seeds 0 1 2
    python benchmarks/llm_item_features.py --dataset synthetic --seeds 0 --epochs 3 --llm path/to/llm
    python benchmarks/llm_item_features.py --dataset ml-latest-small --resume   # after an interruption
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hybridrec.config import TrainConfig  # noqa: E402
from hybridrec.data import load_dataset, make_split  # noqa: E402
from hybridrec.eval import evaluate  # noqa: E402
from hybridrec.eval.table import fmt_mean_std  # noqa: E402
from hybridrec.experiments.modes import CONVERGE  # noqa: E402
from hybridrec.io import write_csv, write_json, write_text  # noqa: E402
from hybridrec.llm.loading import check_available  # noqa: E402
from hybridrec.models import build_model  # noqa: E402
from hybridrec.text import item_strings, make_encoder  # noqa: E402

GROUPS = ("all", "warm", "cold")
METRICS = ("recall@20", "ndcg@20")
MODELS = ("content", "hybrid")


def feature_sets(args) -> dict[str, str | None]:
    """``{label: text_model}``: the sentence model and the LLM."""
    llm = "llm" if args.llm is None else f"llm:{args.llm}"
    return {"MiniLM": args.sentence_model, "LLM": llm}


def llm_options(args, text_model) -> dict:
    """Encoder settings beyond what the models pass (the LLM's layer and token limit)."""
    return {"layer": args.llm_layer, "max_tokens": args.llm_max_tokens} if str(text_model).startswith("llm") else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--llm", default=None, help="hub name or folder of the causal LM (default: the offline SmolLM2-135M)")
    ap.add_argument("--llm-layer", type=lambda s: s if s == "middle" else int(s), default="middle",
                    help="hidden layer pooled: an index (-1: the last) or middle (num_hidden_layers // 2, the default)")
    ap.add_argument("--llm-max-tokens", type=int, default=256)
    ap.add_argument("--sentence-model", default=None, help="sentence-transformers model (default all-MiniLM-L6-v2)")
    ap.add_argument("--cold-fraction", type=float, default=0.2)
    ap.add_argument("--n-test", type=int, default=5, help="warm test interactions per user")
    ap.add_argument("--n-valid", type=int, default=1, help="validation interactions per user (early stopping)")
    ap.add_argument("--valid-cold-fraction", type=float, default=0.0,
                    help="items held out into validation, so the hybrid can calibrate its text part on cold "
                         "items (0, as cold_start.py: the text part keeps its defaults; --mode hybrid uses 0.1)")
    ap.add_argument("--epochs", type=int, default=CONVERGE["epochs"],
                    help="most epochs (default: --mode compare's, modes.CONVERGE)")
    ap.add_argument("--patience", type=int, default=CONVERGE["patience"])
    ap.add_argument("--lr", type=float, default=CONVERGE["lr"])
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--text-batch-size", type=int, default=32, help="texts per forward pass of the encoders")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--resume", action="store_true",
                    help="keep runs.partial.csv (written as each run completes) and skip the runs it holds")
    args = ap.parse_args()
    if args.n_valid < 1:
        ap.error("--n-valid must be >= 1: the hybrid stops early and chooses its blend on validation")
    out = args.out or REPO / "benchmarks" / "results" / f"llm-item-features-{args.dataset}"
    out.mkdir(parents=True, exist_ok=True)
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads, device {args.device}")
    print("machine:", machine)

    if args.llm is None:
        check_available(None)  # the offline default LLM: fail now, not after the MiniLM runs
    data = load_dataset(args.dataset)
    train_cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, l2=args.l2,
                            eval_every=1, patience=args.patience, progress=False)
    features = feature_sets(args)
    partial = out / "runs.partial.csv"
    rows = pd.read_csv(partial).to_dict("records") if args.resume and partial.exists() else []
    done = {(r["model"], r["features"], r["seed"]) for r in rows}
    encoders, splits = [], []
    for seed in args.seeds:
        split = make_split(data, "cold_item", cold_fraction=args.cold_fraction, base="leave_last_out",
                           n_test=args.n_test, n_valid=args.n_valid, valid_cold_fraction=args.valid_cold_fraction,
                           seed=seed)
        print(f"seed {seed}: {split.summary()}")
        splits.append({"seed": seed, **split.info})
        texts = item_strings(split.train)
        for label, text_model in features.items():
            encoders.append(time_encoder(label, text_model, texts, split, seed, args))
            for name in MODELS:
                if (name, label, seed) in done:
                    continue
                t = time.perf_counter()
                params = {"text_model": text_model, "text_batch_size": args.text_batch_size}
                if name == "hybrid":
                    params.update(dim=args.dim, n_layers=args.layers)
                model = build_model(name, params, device=args.device, seed=seed, train=train_cfg)
                enc = model.text_encoder(progress=False, **llm_options(args, text_model))  # make_encoder(text_model)
                model.fit(split.train, split.valid, encoder=enc)
                fit_s = time.perf_counter() - t
                res = evaluate(model, split, ks=[20], metrics=["recall", "ndcg"], device=args.device)
                history = getattr(model, "history", None)
                epochs = len(history.rows) if history is not None else 0
                for g in GROUPS:
                    rows.append({"model": name, "features": label, "seed": seed, "group": g, "fit_s": round(fit_s, 2),
                                 "epochs": epochs, **{m: res.metrics[g][m] for m in METRICS}})
                cells = "  ".join(f"{g}:{res.metrics[g]['recall@20']:.4f}" for g in GROUPS)
                print(f"  {name:>8} / {label:<6} fit {fit_s:6.1f}s ({epochs} epochs)  R@20 {cells}", flush=True)
                write_csv(partial, rows)

    frame = pd.DataFrame(rows)
    write_csv(out / "runs.csv", rows)
    partial.unlink(missing_ok=True)
    summary = (frame.groupby(["model", "features", "group"], sort=False)[list(METRICS) + ["fit_s", "epochs"]]
               .agg(["mean", "std"]).reset_index())
    summary.columns = ["_".join(c).rstrip("_") for c in summary.columns]
    write_csv(out / "summary.csv", summary.to_dict(orient="records"))
    meta = {"dataset": args.dataset, "seeds": args.seeds, "machine": machine,
            "command": "python benchmarks/llm_item_features.py " + " ".join(
                f"'{a}'" if " " in a else a for a in sys.argv[1:]),
            "features": {k: (v if v is not None else "all-MiniLM-L6-v2") for k, v in features.items()},
            "llm": {"layer": args.llm_layer, "max_tokens": args.llm_max_tokens, "pooling": "mean"},
            "split": {"kind": "cold_item", "cold_fraction": args.cold_fraction, "base": "leave_last_out",
                      "n_test": args.n_test, "n_valid": args.n_valid, "valid_cold_fraction": args.valid_cold_fraction},
            "train": {"epochs": args.epochs, "patience": args.patience, "eval_every": 1, "lr": args.lr,
                      "l2": args.l2, "batch_size": args.batch_size, "dim": args.dim, "layers": args.layers},
            "encoders": encoders, "splits": splits, "summary": summary.to_dict(orient="records")}
    write_json(out / "summary.json", meta, default=float)
    table = render(meta)
    write_text(out / "table.md", table + "\n")
    print("\n" + table)
    print(f"\nresults in {out}")


def time_encoder(label: str, text_model, texts: list[str], split, seed: int, args) -> dict:
    """Encode the catalogue once with the encoder the models will use, and say what it cost."""
    enc = make_encoder(text_model, device=args.device, batch_size=args.text_batch_size, progress=False,
                       **llm_options(args, text_model))
    t = time.perf_counter()
    c = enc.encode(texts, ids=split.train.item_vocab.to_list())
    seconds = time.perf_counter() - t
    row = {"features": label, "seed": seed, "encoder": enc.name, "dim": int(c.shape[1]), "items": len(texts),
           "seconds": round(seconds, 2), **enc.stats}
    print(f"  {label}: {enc.name}, {c.shape[1]}-d, {len(texts)} items in {seconds:.1f}s "
          f"({enc.stats['encoded']} encoded, {enc.stats['cached']} cached)", flush=True)
    return row


def render(meta: dict) -> str:
    """The Markdown table: one row per model and features, mean+-std over seeds."""
    s = pd.DataFrame(meta["summary"])
    numbers = s.columns.difference(["model", "features", "group"])
    s[numbers] = s[numbers].apply(pd.to_numeric)  # a one-seed std is NaN, or null when read back from JSON
    lines = [f"{meta['dataset']}, cold-item split, seeds {meta['seeds']}; {meta['machine']}",
             f"command: `{meta['command']}`",
             f"LLM features: mean over tokens of hidden layer {meta['llm']['layer']}, at most "
             f"{meta['llm']['max_tokens']} tokens; validation: {meta['split']['n_valid']} interaction(s) per user, "
             f"{meta['split']['valid_cold_fraction']:g} of the items cold", "",
             "Recall@20 / NDCG@20, mean+-std over seeds", "",
             "| model | features | " + " | ".join(f"R@20 {g} | N@20 {g}" for g in GROUPS) + " | fit s | epochs |",
             "|---|---|" + "---|" * (2 * len(GROUPS) + 2)]
    for (model, feats), part in s.groupby(["model", "features"], sort=False):
        cells = []
        for g in GROUPS:
            r = part[part["group"] == g].iloc[0]
            cells += [fmt_mean_std(r["recall@20_mean"], r["recall@20_std"]),
                      fmt_mean_std(r["ndcg@20_mean"], r["ndcg@20_std"])]
        r = part.iloc[0]
        lines.append(f"| {model} | {feats} ({meta['features'][feats]}) | " + " | ".join(cells)
                     + f" | {r['fit_s_mean']:.1f} | {r['epochs_mean']:.0f} |")
    lines += ["", "Encoders (per seed; later seeds read the embedding cache):", "",
              "| features | encoder | dim | items | seconds | encoded | cached |", "|---|---|---|---|---|---|---|"]
    for e in meta["encoders"]:
        lines.append(f"| {e['features']} (seed {e['seed']}) | {e['encoder']} | {e['dim']} | {e['items']} | "
                     f"{e['seconds']:.1f} | {e['encoded']} | {e['cached']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
