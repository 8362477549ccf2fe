"""The run modes: what each one checks before any work, what it runs, and the settings it
starts from (config files and ``--set`` win over them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import Config

#: The content-aware modes hold items out for test and, the same way, for validation, so
#: that early stopping sees warm items and the hybrid's calibration sees cold ones.
_COLD = {"data": {"split": "cold_item", "split_options": {"valid_fraction": 0.1, "valid_cold_fraction": 0.1}}}


@dataclass(frozen=True)
class Mode:
    """A mode of ``python -m hybridrec.run``.

    Attributes:
        base: settings the mode starts from.
        check: validates the config before data is loaded (raises ConfigError/ValueError).
        run: ``run(cfg, run_dir, **options) -> report text``.
    """

    base: dict
    check: Callable[[Config], None]
    run: Callable[..., str]


def _check_models(cfg: Config) -> None:
    from ..models import build_model
    from ..train.distributed import check_distributed
    from .common import model_params

    per_model = model_params(cfg.model.name, cfg.model.params)
    check_distributed(list(per_model))
    for name, params in per_model.items():  # values too (dim=0, ...): constructing a model is cheap
        build_model(name, params, device="cpu", seed=cfg.run.seed, train=cfg.train)


def _check_compare(cfg: Config) -> None:
    from ..train.distributed import check_distributed
    from .compare import check_compare_config

    check_compare_config(cfg)  # unknown models or settings fail here
    check_distributed(["compare"])


def _check_llm(cfg: Config) -> None:
    from ..train.distributed import check_distributed
    from .candidates import check_llm_config

    check_llm_config(cfg)
    check_distributed(["llm"])


def _run_models(cfg: Config, run_dir: Path, new_items: str | None = None, top_k: int = 20, **_) -> str:
    from .single import run_models

    return run_models(cfg, run_dir, new_items=new_items, top_k=top_k)


def _run_compare(cfg: Config, run_dir: Path, **_) -> str:
    from .compare import run_compare

    return run_compare(cfg, run_dir, progress=cfg.train.progress)[1]


def _run_llm(cfg: Config, run_dir: Path, **_) -> str:
    from .candidates import run_llm

    return run_llm(cfg, run_dir)


def _check_update(cfg: Config) -> None:
    from ..train.distributed import check_distributed

    check_distributed(["update"])


def _run_update(cfg: Config, run_dir: Path, **options) -> str:
    from .update import run_update

    return run_update(cfg, run_dir, **options)


#: Training until validation stops improving: up to 100 epochs at lr 0.01, patience 10 (on the
#: default data MF keeps epoch 26-41 and LightGCN 36-58, all stopped early; docs/compare.md).
CONVERGE = {"epochs": 100, "lr": 0.01, "patience": 10}

#: mode -> what it checks, runs and starts from. The content-aware modes hold cold items
#: out; hybrid trains the content model and LightGCN next to the hybrid, to show it against
#: its parts; compare trains many models on several seeds, each until validation stops improving,
#: and gives the LLM 50 users, to finish in minutes.
MODES: dict[str, Mode] = {
    "collab": Mode({}, _check_models, _run_models),
    "cold": Mode(_COLD, _check_models, _run_models),
    "hybrid": Mode({**_COLD, "train": CONVERGE}, _check_models, _run_models),
    "llm": Mode({}, _check_llm, _run_llm),
    "compare": Mode({**_COLD, "train": CONVERGE, "candidates": {"n_users": 50}}, _check_compare, _run_compare),
    "update": Mode({}, _check_update, _run_update),
}
