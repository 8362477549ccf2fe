"""``hybridrec recommend``: top-K lists from a saved model, written as CSV/JSON or printed.

The work is the models' own API (:meth:`~hybridrec.models.base.Recommender.recommend` for
many users, ``recommend_for_items``, ``recommend_for_text``, ``similar_items``,
``top_users``); this module finds the model, reads ids and titles, and writes the result.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from ..support.catalog import PREFERRED_FOR_RECOMMEND

log = logging.getLogger("hybridrec")


def model_folder(run: str | None, model_dir: str | None, model: str | None) -> tuple[Path, Path | None]:
    """(saved model folder, run folder or None) from ``--run``/``--model-dir``/``--model``."""
    if model_dir is not None:
        folder = Path(model_dir).expanduser()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"--model-dir {folder} is not a saved model (no config.json in it)")
        run_dir = folder.parent.parent if folder.parent.name == "models" else None
        return folder, run_dir
    run_dir = Path(run).expanduser()
    models = run_dir / "models"
    saved = sorted(p.name for p in models.iterdir() if (p / "config.json").is_file()) if models.is_dir() else []
    if not saved:
        raise FileNotFoundError(f"--run {run_dir} has no saved models (expected {models}/<model>/config.json); "
                                "pass a run folder of --mode collab, cold or hybrid, or --model-dir")
    if model is None:
        model = next((m for m in PREFERRED_FOR_RECOMMEND if m in saved), saved[0])
    elif model not in saved:
        raise FileNotFoundError(f"--run {run_dir} saved no model {model!r}; it saved: {', '.join(saved)}")
    return models / model, run_dir


def read_ids(text: str | None = None, path: str | None = None) -> list[str]:
    """Ids from ``"1, 2,3"`` or a file (one per line, or a table with a ``user_id`` column)."""
    if text is not None:
        ids = [t.strip() for t in text.split(",") if t.strip()]
        if not ids:
            raise ValueError("no ids given: pass them comma-separated, e.g. --users 1,2,3")
        return ids
    from ..data.tabular import read_frame

    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    if p.suffix.lower() in (".csv", ".tsv", ".tab", ".parquet", ".pq"):
        frame = read_frame(p)
        if "user_id" not in frame.columns:
            raise ValueError(f"{p} has no user_id column (columns: {list(frame.columns)})")
        ids = [str(x) for x in frame["user_id"] if str(x).strip()]
    else:
        ids = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"{p} lists no ids")
    return ids


def read_titles(items: str | None, run_dir: Path | None) -> dict[str, str]:
    """item id -> title, from ``--items`` or the run folder's ``items.csv`` (empty if neither)."""
    from ..data.tabular import read_frame

    path = Path(items).expanduser() if items else (run_dir / "items.csv" if run_dir is not None else None)
    if path is None or not path.is_file():
        if items:
            raise FileNotFoundError(f"--items {path}: no such file")
        return {}
    frame = read_frame(path)
    if "item_id" not in frame.columns or "title" not in frame.columns:
        raise ValueError(f"{path} needs item_id and title columns (has {list(frame.columns)})")
    return dict(zip(frame["item_id"].astype(str), frame["title"].astype(str)))


def lists(model, args: argparse.Namespace) -> pd.DataFrame:
    """The requested lists as one DataFrame (columns depend on the request)."""
    k, keep_seen = args.k, args.include_seen
    if args.users is not None or args.users_file is not None:
        return model.recommend(read_ids(args.users, args.users_file), k=k, exclude_seen=not keep_seen)
    if args.liked is not None:
        ids, scores = model.recommend_for_items(read_ids(args.liked), k=k, exclude_liked=not keep_seen)
        return _ranked(ids, scores)
    if args.profile is not None:
        ids, scores = model.recommend_for_text(args.profile, k=k)
        return _ranked(ids, scores)
    if args.similar is not None:
        ids, scores = model.similar_items(args.similar.strip(), k=k)
        return _ranked(ids, scores).assign(similar_to=args.similar.strip())[["similar_to", "rank", "item_id", "score"]]
    from ..text.new_items import read_new_items

    if not getattr(model, "content_aware", False):
        raise ValueError(f"model {model.name!r} cannot score new items; use a content or hybrid model (--model)")
    new = model.new_items(read_new_items(args.new_items), where=str(args.new_items))
    rows = [{"item_id": item, "rank": r + 1, "user_id": u, "score": float(s)}
            for item, (users, scores) in model.top_users(new, k=k).items()
            for r, (u, s) in enumerate(zip(users, scores))]
    return pd.DataFrame(rows, columns=["item_id", "rank", "user_id", "score"])


def _ranked(ids, scores) -> pd.DataFrame:
    return pd.DataFrame({"rank": range(1, len(ids) + 1), "item_id": [str(i) for i in ids],
                         "score": [float(s) for s in scores]})


def with_titles(frame: pd.DataFrame, titles: dict[str, str]) -> pd.DataFrame:
    """Add a ``title`` column after ``item_id`` when titles are known."""
    if not titles or "item_id" not in frame.columns or "title" in frame.columns:
        return frame
    out = frame.copy()
    out.insert(out.columns.get_loc("item_id") + 1, "title", out["item_id"].astype(str).map(titles).fillna(""))
    return out


def write(frame: pd.DataFrame, output: str | None) -> None:
    """Print a table, or write ``output`` as CSV (formula-like cells escaped) or JSON records."""
    from ..io import write_csv, write_json

    if output is None:
        with pd.option_context("display.max_rows", None, "display.max_colwidth", 60, "display.width", 200):
            print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        return
    path = Path(output).expanduser()
    if path.suffix.lower() == ".json":
        write_json(path, frame.to_dict(orient="records"))
    elif path.suffix.lower() in (".csv", ""):
        write_csv(path, frame.to_dict(orient="records"))
    else:
        raise ValueError(f"--output {path}: write .csv or .json")
    print(f"{len(frame)} rows written to {path}")


def run_recommend(args: argparse.Namespace) -> int:
    """``hybridrec recommend``; returns the exit code (2: bad arguments, 1: bad ids or data)."""
    from ..data import DataError, UnknownIdError
    from ..models import load_model
    from .common import resolve_device

    if args.k < 1:
        print(f"error: --k must be >= 1, got {args.k}", file=sys.stderr)
        return 2
    try:
        folder, run_dir = model_folder(args.run, args.model_dir, args.model)
        model = load_model(folder, device=resolve_device(args.device))
        frame = with_titles(lists(model, args), read_titles(args.items, run_dir))
        write(frame, args.output)
    except (UnknownIdError, DataError, ValueError, KeyError, FileNotFoundError, RuntimeError, NotImplementedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
