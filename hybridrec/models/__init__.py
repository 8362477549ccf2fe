"""Model registry: build a recommender by name, and load a saved one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from ..data import Vocabulary
from .base import Recommender, _accepted_settings
from .content import ContentRecommender
from .embedding import EmbeddingRecommender
from .gfcf import GFCF
from .hybrid import HybridModule, HybridRecommender
from .lightgcn import LightGCN, LightGCNModule
from .mf import MF, MFModule
from .ngcf import NGCF, NGCFModule
from .pinsage import PinSage, PinSageConv, PinSageModule
from .popularity import Popularity

MODELS: dict[str, type[Recommender]] = {
    "popularity": Popularity, "mf": MF, "lightgcn": LightGCN, "ngcf": NGCF, "gfcf": GFCF,
    "content": ContentRecommender, "hybrid": HybridRecommender, "pinsage": PinSage,
}


def model_class(name: str) -> type[Recommender]:
    """The class registered as ``name``; an unknown name lists the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(name: str, params: dict | None = None, **common) -> Recommender:
    """Instantiate model ``name`` with its ``params``; unknown keys are an error.

    ``common`` carries settings the CLI passes to every model that accepts them
    (``device``, ``seed``, ``train``, ``eval_batch_size``); a model that does not take one
    simply does not get it.
    """
    cls = model_class(name)
    accepted = _accepted_settings(cls)
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
    model._restore(settings, tensors)
    assert isinstance(model, cls)
    return model


__all__ = ["Recommender", "EmbeddingRecommender", "MF", "MFModule", "Popularity", "LightGCN", "LightGCNModule", "NGCF", "NGCFModule", "GFCF", "ContentRecommender",
           "HybridRecommender", "HybridModule", "PinSage", "PinSageConv", "PinSageModule", "MODELS",
           "build_model", "load_model", "model_class"]
