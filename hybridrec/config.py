"""Typed, validated run configuration.

A run is described by seven sections, each a dataclass whose fields are documented below.
YAML files (``configs/*.yaml``) and ``--set section.key=value`` overrides are merged into
these at the CLI edge (:func:`load_config`); the library itself only sees the typed objects.
Unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .support.resources import find_config

class ConfigError(ValueError):
    """A configuration key or value that is not valid."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (no ``!!python`` tags) that also reads ``1e-3`` as a float.

    PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-3``), so ``lr: 1e-3`` would
    be the string ``"1e-3"``; YAML 1.2 and every ML user read it as a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str):
    """Parse YAML text safely, reading ``1e-3``-style numbers as floats."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class DataConfig:
    """Which data set to load and how to split it.

    Attributes:
        dataset: registry name (``synthetic``, ``ml-100k``, ``ml-1m``, ``ml-latest-small``,
            ``gowalla``, ``yelp2018``, ``amazon-book``, ``csv``).
        path: local folder or file of the data set; ``None`` looks in ``$HYBRIDREC_DATA``,
            then the download cache.
        options: loader options (e.g. ``rating_threshold``, column names for ``csv``).
        split: split kind (``temporal``, ``leave_last_out``, ``given``, ``random``, ...).
        split_options: split settings (e.g. ``test_fraction``, ``valid_fraction``).
    """

    dataset: str = "synthetic"
    path: str | None = None
    options: dict = field(default_factory=dict)
    split: str = "leave_last_out"
    split_options: dict = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Which model to train.

    Attributes:
        name: registry name (``popularity``, ``mf``, ...).
        params: the model's own settings (e.g. ``dim``); each model validates its keys.
    """

    name: str = "mf"
    params: dict = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Settings of BPR training, shared by every embedding model.

    Attributes:
        epochs: maximum passes over the training interactions.
        batch_size: positive pairs per step.
        lr: Adam learning rate.
        lr_halve_every: halve the learning rate every this many epochs (epoch ``e`` trains
            at ``lr * 0.5 ** ((e - 1) // lr_halve_every)``); 0 (default) keeps it constant.
        l2: weight of the L2 penalty on the batch's initial (layer-0) embeddings,
            ``l2 * (|e_u|^2 + |e_i|^2 + |e_j|^2) / (2 * batch)``.
        negatives: negative sampler: ``uniform`` (rejecting observed positives) or ``hard``
            (the highest-scoring item, under the current model, of a uniform pool).
        negative_options: sampler settings, e.g. ``{pool_size: 10}`` for ``hard``.
        eval_every: epochs between validation evaluations (0 disables them).
        patience: evaluations without improvement of ``valid_metric`` before stopping.
        valid_metric: metric that drives early stopping, ``name@K``.
        progress: show a progress bar.
        checkpoint_every: epochs between checkpoints of the training state (weights,
            optimiser, random generators, history, early stopping), written into the run
            folder so that ``--resume`` continues an interrupted run exactly; SIGINT/SIGTERM
            also write one. 0 (the library's default) writes none; the command line uses 1
            for the collab, cold and hybrid modes (docs/reliability.md).
    """

    epochs: int = 50
    batch_size: int = 2048
    lr: float = 1e-3
    lr_halve_every: int = 0
    l2: float = 1e-4
    negatives: str = "uniform"
    negative_options: dict = field(default_factory=dict)
    eval_every: int = 1
    patience: int = 5
    valid_metric: str = "recall@20"
    progress: bool = True
    checkpoint_every: int = 0

    def __post_init__(self):
        _at_least(self, "train", epochs=1, batch_size=1, eval_every=0, patience=1, checkpoint_every=0,
                  lr_halve_every=0)
        for name, low in (("lr", 0.0), ("l2", None)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (
                    v <= low if low is not None else v < 0):
                raise ConfigError(f"train.{name} must be a finite number {'> 0' if low is not None else '>= 0'}, "
                                  f"got {v!r}")
        if self.negatives not in ("uniform", "hard"):
            raise ConfigError(f"train.negatives must be 'uniform' or 'hard', got {self.negatives!r}")

    def lr_at(self, epoch: int) -> float:
        """The learning rate of 1-based ``epoch`` (:attr:`lr_halve_every`)."""
        if not self.lr_halve_every:
            return self.lr
        return self.lr * 0.5 ** ((epoch - 1) // self.lr_halve_every)


@dataclass
class EvalConfig:
    """Evaluation settings.

    Attributes:
        ks: cut-offs reported for every @K metric.
        metrics: metric names (``recall``, ``precision``, ``ndcg``, ``mrr``, ``hitrate``).
        batch_size: users scored per batch (bounds memory: batch x n_items floats);
            ``null`` lets the evaluator choose (about 10 MiB of scores per batch on CPU,
            1 GiB on GPU), the fastest setting measured.
    """

    ks: list = field(default_factory=lambda: [10, 20])
    metrics: list = field(default_factory=lambda: ["recall", "precision", "ndcg", "mrr", "hitrate"])
    batch_size: int | None = None

    def __post_init__(self):
        if self.batch_size is not None:
            _at_least(self, "eval", batch_size=1)
        ks = self.ks if isinstance(self.ks, list) else [self.ks]
        if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
            raise ConfigError(f"eval.ks must be a list of positive integers, got {self.ks!r}")


def _at_least(section, where: str, **minimums) -> None:
    """Raise ConfigError for an integer field of ``section`` that is not an integer >= its minimum."""
    for name, low in minimums.items():
        v = getattr(section, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"{where}.{name} must be an integer >= {low}, got {v!r}")


@dataclass
class RunConfig:
    """What the CLI does and where it writes.

    Attributes:
        mode: ``collab`` (graph/collaborative models), ``cold`` (content only), ``hybrid``,
            ``compare`` (every model of the ``compare`` section, several seeds), ``llm``.
        seed: fixes the split, sampling and initialisation.
        device: torch device, ``cpu`` or ``cuda``; ``auto`` picks cuda when available.
        out_dir: parent folder of run folders.
        name: run folder name; default ``<dataset>-<model>-<timestamp>``.
    """

    mode: str = "collab"
    seed: int = 0
    device: str = "cpu"
    out_dir: str = "runs"
    name: str | None = None


@dataclass
class CompareConfig:
    """What ``--mode compare`` trains, over which seeds, and what it plots.

    Attributes:
        models: models trained and evaluated on the same split of every seed; registry
            names, ``random`` (uniform random scores, the floor) and ``llm`` (the prompted
            LLM ranker, on the candidate protocol only: it cannot rank a whole catalogue).
        seeds: one split, sampling and initialisation per seed; tables give mean and
            standard deviation over them.
        params: per-model settings on top of ``model.params``, e.g. ``{lightgcn: {n_layers: 2}}``.
        thresholds: blend thresholds of the hybrid swept for the threshold plot (``.inf``
            or ``inf`` = content only); empty skips the sweep.
        sweep_seeds: how many of ``seeds`` (the first ones) the sweep runs on.
        candidate_seeds: how many of ``seeds`` (the first ones) the candidate protocol
            (``candidates`` section) runs on when ``llm`` is among the models; every model
            then also ranks the same candidate lists as the LLM.
        buckets: lower edges of the item popularity buckets (training interactions) of the
            Recall@K-by-popularity plot.
        train: per-model training recipes on top of the ``train`` section, e.g.
            ``{mf: {lr: 0.01}, lightgcn: {epochs: 100, lr: 0.01, patience: 10}}``; the hybrid
            reuses LightGCN as its graph part only when their recipes agree (else it trains
            its own, identically seeded).
    """

    models: list = field(default_factory=lambda: ["random", "popularity", "content", "mf", "lightgcn", "hybrid", "llm"])
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    params: dict = field(default_factory=dict)
    thresholds: list = field(default_factory=lambda: [0, 10, 50, 100, 200, "inf"])
    sweep_seeds: int = 1
    candidate_seeds: int = 1
    buckets: list = field(default_factory=lambda: [0, 1, 10, 100])
    train: dict = field(default_factory=dict)


@dataclass
class CandidatesConfig:
    """The candidate-ranking protocol of ``--mode llm``: every model ranks the same lists.

    Attributes:
        n_candidates: list length N: each test user's held-out item plus N - 1 items drawn
            uniformly from those the user never interacted with.
        n_users: a seeded sample of test users (the LLM costs seconds per user);
            ``null`` = every test user.
        pool: where negatives come from: ``all`` items or ``train`` (items with a
            training interaction).
        ks: cut-offs, each at most ``n_candidates``.
        baselines: models evaluated on the same lists next to the LLM (registry names,
            trained with the ``train`` section; content-aware ones encode item text).
    """

    n_candidates: int = 20
    n_users: int | None = 100
    pool: str = "all"
    ks: list = field(default_factory=lambda: [1, 5, 10])
    baselines: list = field(default_factory=lambda: ["popularity"])


@dataclass
class Config:
    """A whole run: data, model, train, eval, run, compare and candidates sections."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    candidates: CandidatesConfig = field(default_factory=CandidatesConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Config":
        return _build(cls, d or {}, "config")


def section_from_dict(cls, d: dict, where: str):
    """One config section (e.g. :class:`TrainConfig`) from a mapping, checked like a whole
    config; ``where`` names it in errors (``compare.train.mf``)."""
    return _build(cls, d, where)


def _build(cls, d: dict, where: str):
    """Build dataclass ``cls`` from ``d``, recursing into section dataclasses."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid keys: {sorted(fields)}")
    kwargs = {}
    for name, value in d.items():
        default = fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING else fields[name].default
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value or {}, f"{where}.{name}")
        else:
            kwargs[name] = _check_type(value, default, f"{where}.{name}")
    return cls(**kwargs)


def _check_type(value: Any, default: Any, where: str) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, (list, dict, str)) and not isinstance(value, type(default)):
        raise ConfigError(f"{where} must be a {type(default).__name__}, got {value!r}")
    return value


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=0.01"`` -> (["train", "lr"], 0.01); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({e})") from None
    return parts, value


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge; ``update`` wins."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(paths: list[str | os.PathLike] = (), overrides: list[str] = (), base: dict | None = None) -> Config:
    """Merge ``base``, YAML files (later wins) and ``key=value`` overrides into a Config.

    A path that is not a file names a shipped config (``configs/gowalla.yaml`` or
    ``gowalla``: :func:`~hybridrec.resources.find_config`), so installed copies work from
    any folder.

    ``base`` (a mode's starting settings) sets its ``data.split_options`` as one whole: when
    a file or override names the split or sets the options mapping, the base's options are
    dropped, so a mode's options for its own split never leak into another split; a single
    option (``--set data.split_options.cold_fraction=0.3``) adds to them.
    """
    d: dict = copy.deepcopy(base or {})  # overrides below edit nested sections in place
    base_options = d.get("data", {}).pop("split_options", None)
    touched = False
    for p in paths:
        try:
            p = find_config(p)
        except FileNotFoundError as e:
            raise ConfigError(str(e)) from None
        try:
            loaded = load_yaml(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: top level must be a mapping of sections")
        data = loaded.get("data")
        touched |= isinstance(data, dict) and ("split" in data or "split_options" in data)
        d = merge(d, loaded)
    for o in overrides:
        parts, value = parse_override(o)
        touched |= parts in (["data", "split"], ["data", "split_options"]) or (
            parts == ["data"] and isinstance(value, dict) and ("split" in value or "split_options" in value))
        cur = d
        for k in parts[:-1]:
            cur = cur.setdefault(k, {})
            if not isinstance(cur, dict):
                raise ConfigError(f"override {o!r}: {k} is not a section")
        cur[parts[-1]] = value
    if base_options is not None:
        data = d.setdefault("data", {})
        if not touched:  # one option set on the command line adds to the mode's options
            data["split_options"] = merge(base_options, data.get("split_options") or {})
    return Config.from_dict(d)
