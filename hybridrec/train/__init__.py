"""Training: BPR loss, negative samplers and the training loop."""

from .losses import bpr_loss, l2_penalty
from .sampling import UniformNegativeSampler, build_sampler
from .trainer import TrainHistory, train_bpr

__all__ = ["bpr_loss", "l2_penalty", "UniformNegativeSampler", "build_sampler", "TrainHistory", "train_bpr"]
