"""The run folder: created race-free inside ``run.out_dir`` under a checked name, with its
log (``run.log``). Imports nothing heavy: the command line makes the folder before any
model code is loaded."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from ..config import Config, ConfigError


def make_run_dir(cfg: Config) -> Path:
    """A new run folder ``out_dir/<name>`` (``-2``, ``-3``, ... when taken), created with one
    ``mkdir`` each try, so concurrent runs with one name never share or race for a folder."""
    what = cfg.run.mode if cfg.run.mode in ("compare", "llm") else cfg.model.name.replace(",", "+")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = cfg.run.name or (f"update-{stamp}" if cfg.run.mode == "update" else f"{cfg.data.dataset}-{what}-{stamp}")
    check_run_name(name)
    out = Path(cfg.run.out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create run.out_dir {out}: {e.strerror or e}; pass --out-dir <writable folder>") from None
    for n in range(1, 10_000):
        run_dir = out / (name if n == 1 else f"{name}-{n}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
        except OSError as e:
            raise ConfigError(f"cannot create run folder {run_dir}: {e.strerror or e}; "
                              "pass --out-dir <writable folder>") from None
    raise ConfigError(f"{out} already holds 9999 runs named {name!r}; pick another run.name")


def check_run_name(name: str) -> None:
    """A run name is one folder name inside ``out_dir``: no path separators, not ``.``/``..``."""
    bad = (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
           or Path(name).is_absolute() or name.startswith("~"))
    if bad:
        raise ConfigError(f"run.name {name!r} must be a plain folder name inside run.out_dir "
                          "(no '/', '..' or absolute paths); use --out-dir to choose where runs go")


def setup_logging(run_dir: Path, rank: int | None = None) -> None:
    """Log everything to ``run.log`` (``run.rank<r>.log`` for the other processes of a
    distributed run) and warnings to stderr."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger("hybridrec")
    root.setLevel(logging.DEBUG)
    root.handlers.clear()
    fh = logging.FileHandler(run_dir / ("run.log" if not rank else f"run.rank{rank}.log"), encoding="utf-8")
    fh.setFormatter(fmt)
    fh.setLevel(logging.DEBUG)
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    sh.setLevel(logging.WARNING)
    root.addHandler(fh)
    root.addHandler(sh)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(fh)
