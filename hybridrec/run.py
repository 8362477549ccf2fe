"""Command line: ``python -m hybridrec.run --mode collab --model mf --dataset ml-latest-small``.

Thin by design: parse arguments, build the typed config, call the library, write the run
folder (config.yaml, run.log, metrics.json / metrics.csv, history.json, model files) and
print a results table. ``--resume RUN_DIR`` runs an interrupted run again in its own folder,
with its own config.yaml, from its checkpoints (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import yaml

from . import __version__
from .support.catalog import check_dataset_name, check_model_names
from .config import Config, ConfigError, load_config, merge
from .experiments.modes import MODES
from .experiments.run_folder import check_run_name, make_run_dir, setup_logging
from .io import write_text
from .support.versions import write_versions

log = logging.getLogger("hybridrec")

#: modes whose runs checkpoint their training and can be resumed
RESUMABLE = ("collab", "cold", "hybrid")
#: ``train.checkpoint_every`` of the command line in those modes (the library's default is 0):
#: about 10 ms an epoch (a 2.7 MB checkpoint), 1.5% of a LightGCN epoch on ml-100k (docs/reliability.md)
CLI_CHECKPOINT_EVERY = 1


def parse_args(argv: list[str] | None = None, prog: str = "python -m hybridrec.run") -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Train and evaluate recommenders on one harness (full ranking, training items masked).",
    )
    p.add_argument("--mode", choices=list(MODES), help="what to run (default: from config, 'collab')")
    p.add_argument("--model", help="collab: model name(s), comma-separated (e.g. popularity,mf); "
                   "hybrid: pinsage (content and graph in one model) instead of the hybrid and its parts; "
                   "compare: the models compared (default: compare.models); llm: a causal LM "
                   "folder or hub name (default: the offline SmolLM2-135M-Instruct)")
    p.add_argument("--dataset", help="data set name (synthetic, ml-100k, ml-1m, ml-latest-small, gowalla, ...)")
    p.add_argument("--data-path", help="local folder or file of the data set")
    p.add_argument("--config", action="append", default=[], help="YAML config file (repeatable; later wins)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=20 --set model.params.dim=32")
    p.add_argument("--seed", type=int, help="seed for split, sampling and initialisation")
    p.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    p.add_argument("--out-dir", help="parent folder of run folders (default: runs)")
    p.add_argument("--new-items", metavar="FILE",
                   help="cold/hybrid: CSV/TSV/Parquet of new items (item_id + text columns) to score "
                        "after training; writes new_items_top_users.csv to the run folder")
    p.add_argument("--load", metavar="DIR", help="update: a saved hybrid model folder (runs/<run>/models/hybrid)")
    p.add_argument("--interactions", metavar="FILE",
                   help="update: CSV/TSV/Parquet of new interactions (user_id, item_id) to fold into --load; "
                        "unknown items need their text in --new-items")
    p.add_argument("--top-k", type=int, default=20, help="users listed per new item (default 20)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (bars are drawn only on a terminal; "
                   "HYBRIDREC_PROGRESS=always draws them into logs too, TQDM_DISABLE=1 turns them off)")
    p.add_argument("--resume", metavar="RUN_DIR", help="run an interrupted collab/cold/hybrid run again in its "
                   "folder, with its config.yaml: each model goes on from its checkpoint, finished ones skip "
                   "training (no other flag but --quiet)")
    p.add_argument("--version", action="version", version=f"hybridrec {__version__}")
    args = p.parse_args(argv)
    if args.resume is not None:
        defaults = vars(p.parse_args([]))
        given = [f"--{'set' if k == 'overrides' else k.replace('_', '-')}" for k, v in vars(args).items()
                 if k not in ("resume", "quiet") and v != defaults[k]]
        if given:
            p.error(f"--resume takes the run's own config.yaml; {', '.join(given)} cannot be given with it "
                    "(only --quiet can)")
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Config files, then --set overrides, then the dedicated flags (which win).

    The mode picks the model family: ``cold`` trains ``content``, ``hybrid`` trains
    ``content``, ``lightgcn`` and ``hybrid`` (the hybrid next to its parts; ``--model pinsage``
    trains PinSage instead), ``collab`` the named models.
    """
    overrides = list(args.overrides)
    flags = {
        "run.mode": args.mode, "data.dataset": args.dataset, "data.path": args.data_path,
        "run.seed": args.seed, "run.device": args.device, "run.out_dir": args.out_dir,
    }
    overrides += [f"{k}={v}" for k, v in flags.items() if v is not None]
    mode = args.mode or load_config(args.config, overrides).run.mode
    if mode not in MODES:
        raise ConfigError(f"run.mode {mode!r} is not a mode; modes: {', '.join(MODES)}")
    if args.model and mode == "hybrid" and args.model not in ("pinsage", "hybrid"):
        raise ConfigError(f"--mode hybrid trains the hybrid next to its parts, or PinSage with --model pinsage; "
                          f"got --model {args.model!r} (use --mode collab --model {args.model} for other models)")
    elif args.model and mode not in ("compare", "llm", "hybrid"):
        overrides.append(f"model.name={args.model}")
    if args.quiet:
        overrides.append("train.progress=false")
    base = MODES[mode].base if mode in MODES else {}
    if mode == "hybrid" and args.model == "pinsage":  # its epochs are long: the cold split, its own training defaults
        base = MODES["cold"].base
    if mode in RESUMABLE:  # checkpoints make the run resumable; config files and --set still win
        base = merge({"train": {"checkpoint_every": CLI_CHECKPOINT_EVERY}}, base)
    cfg = load_config(args.config, overrides, base=base)
    if mode == "cold":
        cfg.model.name = "content"
    elif mode == "hybrid":  # PinSage blends content and graph itself: it is its own hybrid
        cfg.model.name = "pinsage" if args.model == "pinsage" else "content,lightgcn,hybrid"
    if mode == "llm":
        cfg.model.name = "llm"
        if args.model:
            cfg.model.params["model"] = args.model
    if mode == "compare" and args.model:
        cfg.compare.models = [m.strip() for m in args.model.split(",") if m.strip()]
    if args.new_items and mode not in ("cold", "hybrid", "update"):
        raise ConfigError("--new-items needs a content-aware model: use --mode hybrid or --mode cold")
    if mode == "update" and not (args.load and args.interactions):
        raise ConfigError("--mode update needs --load <saved model folder> and --interactions <file>")
    if mode != "update" and (args.load or args.interactions):
        raise ConfigError("--load and --interactions belong to --mode update")
    return cfg


def resume_config(args: argparse.Namespace) -> Config:
    """The config of the run folder ``args.resume`` (its config.yaml) for ``--resume``;
    ``args.new_items`` and ``args.top_k`` come from the folder's resume.json."""
    run_dir = Path(args.resume).expanduser()
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"--resume {args.resume}: no config.yaml there; pass the folder of an interrupted run "
                          "(runs/<name>)")
    cfg = load_config([path], ["train.progress=false"] if args.quiet else [])
    if cfg.run.mode not in RESUMABLE:
        raise ConfigError(f"--resume {args.resume}: a {cfg.run.mode} run cannot be resumed (only "
                          f"{', '.join(RESUMABLE)} runs checkpoint their training); start it again")
    if cfg.train.checkpoint_every <= 0:
        raise ConfigError(f"--resume {args.resume}: the run was started with train.checkpoint_every=0, so it wrote "
                          "no checkpoints; start it again")
    from .train.distributed import is_distributed

    if is_distributed():
        raise ConfigError("--resume runs in one process: run it without accelerate launch / torchrun")
    extra = run_dir / "resume.json"
    if extra.is_file():
        options = json.loads(extra.read_text(encoding="utf-8"))
        args.new_items, args.top_k = options.get("new_items"), options.get("top_k", args.top_k)
    return cfg


def precheck(cfg: Config, args: argparse.Namespace) -> None:
    """Checks by name only (no torch, no data): a mistyped model or data set, a missing
    ``--new-items`` file or a bad ``--top-k`` fails in well under a second, before any run
    folder exists. The mode's own check (model settings) follows, still before the folder."""
    mode = cfg.run.mode
    if mode in ("collab", "cold", "hybrid"):
        check_model_names([m.strip() for m in cfg.model.name.split(",") if m.strip()])
    elif mode == "compare":
        check_model_names(cfg.compare.models, "compare.models")
    elif mode == "llm":
        check_model_names(cfg.candidates.baselines, "candidates.baselines")
    if mode != "update":
        check_dataset_name(cfg.data.dataset)
    if args.new_items is not None and not Path(args.new_items).expanduser().is_file():
        raise ConfigError(f"--new-items {args.new_items}: no such file")
    if args.interactions is not None and not Path(args.interactions).expanduser().is_file():
        raise ConfigError(f"--interactions {args.interactions}: no such file")
    if cfg.run.name is not None:
        check_run_name(cfg.run.name)
    if args.top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {args.top_k}")
    out = Path(cfg.run.out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"run.out_dir {out} exists and is not a folder; pass --out-dir <folder>")


def main(argv: list[str] | None = None, prog: str = "python -m hybridrec.run") -> int:
    args = parse_args(argv, prog)
    try:
        cfg = resume_config(args) if args.resume is not None else build_config(args)
        precheck(cfg, args)
        from .experiments.common import deterministic_on_cpu, resolve_device

        cfg.run.device = resolve_device(cfg.run.device)
        MODES[cfg.run.mode].check(cfg)
        if cfg.run.mode != "update":
            from .data.splits import check_split_options

            check_split_options(cfg.data.split, **cfg.data.split_options)
        if args.new_items is not None and cfg.run.mode in ("cold", "hybrid"):
            from .experiments.common import model_params
            from .experiments.single import check_new_items_file

            check_new_items_file(args.new_items, model_params(cfg.model.name, cfg.model.params))
    except (ConfigError, ValueError, RuntimeError) as e:  # settings, or a model that is not installed
        print(f"error: {e}", file=sys.stderr)
        return 2

    from .train.distributed import context

    dist = context(cfg.run.device)  # None unless started by a distributed launcher
    if dist is not None and cfg.run.device.startswith("cuda"):
        cfg.run.device = str(dist.accelerator.device)  # one GPU per process: cuda:<local rank>
    import torch

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    deterministic_on_cpu(cfg.run.device)  # the same seed gives the same metrics, whatever the threads
    try:
        return _run(cfg, args, dist)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)  # a caller's own setting comes back
        if dist is not None:
            dist.close()


def _run(cfg: Config, args: argparse.Namespace, dist) -> int:
    try:
        if args.resume is not None:
            run_dir = Path(args.resume).expanduser()
        elif dist is None:
            run_dir = make_run_dir(cfg)
        else:  # one run folder, made by the main process
            run_dir = Path(dist.broadcast(str(make_run_dir(cfg)) if dist.is_main else None))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    setup_logging(run_dir, None if dist is None else dist.rank)  # appends to run.log when resuming
    resumable = cfg.run.mode in RESUMABLE and cfg.train.checkpoint_every > 0 and dist is None
    if args.resume is not None:
        log.info("resuming run folder %s with its config.yaml", run_dir)
    elif dist is None or dist.is_main:
        write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        write_versions(run_dir, cfg.run.device)
        if resumable:  # what --resume needs besides config.yaml
            new_items = str(Path(args.new_items).expanduser().resolve()) if args.new_items else None
            write_text(run_dir / "resume.json", json.dumps({"new_items": new_items, "top_k": args.top_k}))
    log.info("run folder %s; config %s", run_dir, json.dumps(cfg.to_dict()))
    from .train.checkpoint import TrainingInterrupted

    try:
        report = MODES[cfg.run.mode].run(cfg, run_dir, new_items=args.new_items, top_k=args.top_k,
                                         load=args.load, interactions=args.interactions)
    except TrainingInterrupted as e:  # SIGINT/SIGTERM: the checkpoint of the last whole epoch is written
        print(f"interrupted at epoch {e.epoch}; checkpoint written to {e.folder}; resume with --resume {run_dir}",
              file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # outside training: finished models have their checkpoints
        log.info("interrupted", exc_info=True)
        print("interrupted" + (f"; resume with --resume {run_dir}" if resumable else ""), file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as e:  # data, settings, models
        log.debug("run failed", exc_info=True)  # the traceback goes to run.log only
        print(f"error: {e}", file=sys.stderr)
        return 1
    if dist is None or dist.is_main:
        print(report)
        print(f"\nrun folder: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
