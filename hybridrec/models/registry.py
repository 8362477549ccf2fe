"""The model registry: every scorer by name, built with checked settings, loaded from disk.

Adding a model is one line in :data:`REGISTRY` (:data:`hybridrec.support.catalog.MODEL_CLASSES`) (``name -> "module:Class"``); the class
carries its capability flags (:class:`~hybridrec.models.base.Recommender`), which compare
mode, distributed training and the contract tests read. Classes are imported on first use,
so the registry can name models (the LLM ranker) whose modules import this package.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from ..support.catalog import MODEL_CLASSES
from ..data import Vocabulary
from ..io import clean_stale
from .base import Recommender, accepted_settings

#: name -> "module:Class" of every registered scorer (names listed in :mod:`hybridrec.support.catalog`).
REGISTRY: dict[str, str] = MODEL_CLASSES


class _Models(Mapping):
    """``MODELS[name]`` is the registered class (imported on first use); iterating gives the names."""

    def __getitem__(self, name: str) -> type[Recommender]:
        if name not in REGISTRY:
            raise KeyError(name)
        module, cls = REGISTRY[name].split(":")
        return getattr(importlib.import_module(module), cls)

    def __iter__(self):
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


MODELS: Mapping[str, type[Recommender]] = _Models()


def model_class(name: str) -> type[Recommender]:
    """The class registered as ``name``; an unknown name lists the valid ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(REGISTRY))}")
    return MODELS[name]


def model_settings(name: str) -> set[str]:
    """The settings (``model.params`` keys) model ``name`` takes: its constructor's keyword
    arguments, less those that take live objects (``code_only``)."""
    cls = model_class(name)
    return accepted_settings(cls) - set(cls.code_only)


def settings_for(name: str, params: dict) -> dict:
    """The entries of ``params`` that model ``name`` takes (settings shared by several models
    go to each that accepts them)."""
    accepted = accepted_settings(model_class(name))
    return {k: v for k, v in params.items() if k in accepted}


def models_with(**flags) -> list[str]:
    """Registered names whose class has every given capability flag, e.g.
    ``models_with(distributed=True)``."""
    return [n for n in REGISTRY if all(getattr(MODELS[n], f) == v for f, v in flags.items())]


def build_model(name: str, params: dict | None = None, **common) -> Recommender:
    """Instantiate model ``name`` with its ``params``; unknown keys are an error.

    ``common`` carries settings the CLI passes to every model that accepts them
    (``device``, ``seed``, ``train``, ``eval_batch_size``); a model that does not take one
    simply does not get it.
    """
    cls = model_class(name)
    accepted = accepted_settings(cls)
    params = dict(params or {})
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(f"model {name!r} has no setting(s) {unknown}; valid: {sorted(accepted - set(common))}")
    kwargs = {k: v for k, v in common.items() if k in accepted}
    kwargs.update(params)
    return cls(**kwargs)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Recommender:
    """Load a model saved with :meth:`Recommender.save` (safetensors + JSON, no pickles)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    clean_stale(path)  # a save killed mid-swap leaves the last complete copy aside: put it back
    cfg_path, w_path = path / "config.json", path / "weights.safetensors"
    if not cfg_path.is_file() or not w_path.is_file():
        raise FileNotFoundError(f"{path} is not a saved hybridrec model (needs config.json and weights.safetensors)")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_path} is corrupt ({e}); save the model again") from None
    try:
        tensors = load_file(str(w_path))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{w_path} is corrupt ({e}); save the model again") from None
    cls = model_class(config["model"])
    settings = config.get("settings", {})
    model = build_model(config["model"], settings, device=device)
    model.user_vocab = Vocabulary(config["user_ids"], kind="user")
    model.item_vocab = Vocabulary(config["item_ids"], kind="item")
    if "_seen_indptr" in tensors:
        indptr = tensors.pop("_seen_indptr").numpy()
        indices = tensors.pop("_seen_indices").numpy()
        model._seen = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr),
            shape=(len(model.user_vocab), len(model.item_vocab)),
        )
    try:
        model._restore(settings, tensors)
        _check_loaded(model)
    except (KeyError, RuntimeError, ValueError, IndexError) as e:  # missing tensors, wrong shapes or sizes
        raise ValueError(f"{path} does not hold a consistent {config['model']} model ({type(e).__name__}: {e}); "
                         "its config.json and weights.safetensors disagree: save the model again") from None
    assert isinstance(model, cls)
    return model


def _check_loaded(model: Recommender) -> None:
    """One user's scores must cover exactly the items config.json lists (personalised models;
    random scores draw from a generator that a check must not advance)."""
    if not len(model.user_vocab) or not model.full_ranking or not model.personalised:
        return
    if hasattr(model, "embeddings"):  # the tables' rows must be the vocabularies
        users, items = model.embeddings()
        if (len(users), len(items)) != (len(model.user_vocab), len(model.item_vocab)):
            raise ValueError(f"the weights hold {len(users)} users and {len(items)} items, config.json lists "
                             f"{len(model.user_vocab)} users and {len(model.item_vocab)} items")
    scores = model.score_users(torch.zeros(1, dtype=torch.long, device=model.device))
    if tuple(scores.shape) != (1, len(model.item_vocab)):
        raise ValueError(f"the weights score {tuple(scores.shape)} for one user, config.json lists "
                         f"{len(model.item_vocab)} items")
