"""What every mode shares: seeding, load + split, and each model's settings."""

from __future__ import annotations

import logging
import random
import time

import numpy as np
import torch

from ..config import Config, ConfigError
from ..data import Interactions, Split, load_dataset, make_split
from ..models.registry import model_class, model_settings, settings_for

log = logging.getLogger("hybridrec.experiments")


def resolve_device(name: str) -> str:
    """``auto`` -> cuda when torch sees a GPU, else cpu; a cuda device without a GPU is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU; use --device cpu")
    return name


def deterministic_on_cpu(device: str) -> None:
    """Use torch's deterministic kernels for a CPU run (the command line calls this).

    With two or more threads some CPU kernels (the backward of embedding lookups, scatter
    sums) add in a different order on every run; the differences are ~1e-8 but training
    amplifies them, enough to move PinSage's Recall@20 by 5% between two runs of one seed.
    The deterministic kernels cost no measurable time here (LightGCN and PinSage on
    ml-100k). GPU runs keep the fast kernels."""
    torch.use_deterministic_algorithms(torch.device(device).type == "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_data(cfg: Config) -> Interactions:
    """The data set ``cfg.data`` names, with its loader options."""
    t0 = time.perf_counter()
    data = load_dataset(cfg.data.dataset, cfg.data.path, **cfg.data.options)
    log.info("data %r loaded in %.1fs", data, time.perf_counter() - t0)
    return data


def split_data(cfg: Config, data: Interactions, seed: int) -> Split:
    """``cfg.data.split`` of ``data`` drawn with ``seed``."""
    split = make_split(data, cfg.data.split, seed=seed, **cfg.data.split_options)
    log.info("seed %d split: %s", seed, split.summary())
    return split


def load_and_split(cfg: Config) -> tuple[Interactions, Split]:
    """Seed everything with ``cfg.run.seed``, load the data set and split it."""
    seed_everything(cfg.run.seed)
    data = load_data(cfg)
    return data, split_data(cfg, data, cfg.run.seed)


def model_names(spec: str) -> list[str]:
    """``"popularity, mf"`` -> ["popularity", "mf"]."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError("model.name is empty; name at least one model")
    return names


def model_params(spec: str, params: dict) -> dict[str, dict]:
    """Share ``params`` among the models of ``spec``; a key no listed model takes is an error."""
    names = model_names(spec)
    per_model = {n: settings_for(n, params) for n in names}
    used = set().union(*[set(p) for p in per_model.values()]) if per_model else set()
    unused = sorted(set(params) - used)
    if unused:
        raise ConfigError(f"model.params {unused} are settings of none of the models {names}")
    return per_model


def check_settings(name: str, params: dict, where: str) -> dict:
    """``params`` checked against model ``name``'s settings; ``where`` names the config
    entry in the error (e.g. ``compare.params.mf``)."""
    model_class(name)  # unknown names fail here, listing the valid ones
    accepted = model_settings(name)
    bad = sorted(set(params) - accepted)
    if bad:
        raise ConfigError(f"{where}: {bad} are not settings of {name}; its settings: {sorted(accepted)}")
    return dict(params)


def reusable_graph(model, fitted: dict, train: Interactions) -> dict:
    """``{"graph": lightgcn}`` when ``model`` (a hybrid) can take the LightGCN already fitted
    on ``train`` (``fitted["lightgcn"]``) as its graph part instead of training it again;
    else ``{}``. Extra keyword arguments for ``model.fit``."""
    graph = fitted.get("lightgcn")
    if graph is not None and hasattr(model, "can_reuse") and model.can_reuse(graph, train):
        return {"graph": graph}
    return {}
