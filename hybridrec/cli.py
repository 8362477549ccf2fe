"""The ``hybridrec`` command: ``hybridrec run ...`` (train and evaluate, the same as
``python -m hybridrec.run ...``) and ``hybridrec recommend ...`` (top-K lists from a saved
model or run folder: known users, new users by liked items or free text, similar items,
users for new items).

Examples::

    hybridrec run --mode hybrid
    hybridrec recommend --run runs/<folder> --users 1,2,3 --k 10
    hybridrec recommend --run runs/<folder> --liked 50,172,181 --k 10
    hybridrec recommend --run runs/<folder> --model content --profile "space opera with robots"
    hybridrec recommend --run runs/<folder> --similar 50 --output similar.json
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .support.catalog import PREFERRED_FOR_RECOMMEND as PREFERRED


def recommend_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hybridrec recommend",
        description="Top-K recommendations from a saved model or run folder (CSV/JSON or a table).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="DIR", help="a run folder (runs/<folder>); its models/ hold the saved models")
    src.add_argument("--model-dir", metavar="DIR", help="a saved model folder (config.json + weights.safetensors)")
    p.add_argument("--model", help="which of the run's models (default: the first of "
                   f"{', '.join(PREFERRED)} that the run saved)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--users", help="user ids, comma-separated")
    what.add_argument("--users-file", metavar="FILE",
                      help="user ids, one per line, or a CSV/TSV/Parquet file with a user_id column")
    what.add_argument("--liked", help="a new user known by the item ids they liked, comma-separated "
                      "(folded in without retraining)")
    what.add_argument("--profile", metavar="TEXT", help="a new user who describes what they like "
                      "(scored through the text side; content-aware models)")
    what.add_argument("--similar", metavar="ITEM", help="items most similar to this item id")
    what.add_argument("--new-items", metavar="FILE", help="CSV/TSV/Parquet of new items (item_id + text "
                      "columns): the top users of each (content-aware models)")
    p.add_argument("--k", type=int, default=10, help="list length (default 10)")
    p.add_argument("--include-seen", action="store_true", help="keep items the user interacted with in training")
    p.add_argument("--items", metavar="FILE", help="item titles (item_id + title columns); default: the "
                   "run folder's items.csv when there is one")
    p.add_argument("--output", "-o", metavar="FILE", help="write the lists to FILE (.csv or .json) instead of a table")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(
        prog="hybridrec",
        description="Hybrid LLM + GNN recommendation: train, evaluate and recommend.",
        epilog="hybridrec run --help and hybridrec recommend --help list each command's options.",
    )
    top.add_argument("--version", action="version", version=f"hybridrec {__version__}")
    top.add_argument("command", choices=["run", "recommend"], help="run: train and evaluate (python -m hybridrec.run); "
                     "recommend: top-K lists from a saved model")
    if not argv or argv[0].startswith("-"):
        top.parse_args(argv or ["--help"])  # --version / --help exit here; anything else is an error
        return 2
    command, rest = argv[0], argv[1:]
    top.parse_args([command])  # an unknown command exits with the list of commands
    if command == "run":
        from .run import main as run_main

        return run_main(rest, prog="hybridrec run")
    from .experiments.recommend import run_recommend

    args = recommend_parser().parse_args(rest)
    return run_recommend(args)


if __name__ == "__main__":
    sys.exit(main())
