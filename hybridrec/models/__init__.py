"""Recommenders: the contract (:mod:`.base`), the registry (:mod:`.registry`) and the models."""

from .base import Recommender, accepted_settings
from .content import ContentRecommender
from .embedding import EmbeddingRecommender
from .foldin import FoldIn
from .gfcf import GFCF
from .hybrid import HybridRecommender
from .lightgcn import LightGCN, LightGCNModule
from .mf import MF, MFModule
from .ngcf import NGCF, NGCFModule
from .pinsage import PinSage, PinSageConv, PinSageModule
from .popularity import Popularity
from .random import RandomScores
from .registry import MODELS, REGISTRY, build_model, load_model, model_class, model_settings, models_with, settings_for

__all__ = ["Recommender", "EmbeddingRecommender", "FoldIn", "MF", "MFModule", "Popularity", "RandomScores", "LightGCN",
           "LightGCNModule", "NGCF", "NGCFModule", "GFCF", "ContentRecommender", "HybridRecommender",
           "PinSage", "PinSageConv", "PinSageModule", "MODELS", "REGISTRY", "accepted_settings",
           "build_model", "load_model", "model_class", "model_settings", "models_with", "settings_for"]
