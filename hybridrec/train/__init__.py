"""Training: the shared loop, the BPR step, losses, negative samplers and checkpoints."""

from .bpr import bpr_step, train_bpr
from .checkpoint import CheckpointError, TrainingInterrupted, attach, checkpointing
from .loop import TrainHistory, TrainingDiverged, fit_loop, minibatch_epoch, parse_metric, ranking_validator
from .losses import bpr_loss, l2_penalty
from .sampling import UniformNegativeSampler, build_sampler

__all__ = ["TrainHistory", "TrainingDiverged", "fit_loop", "minibatch_epoch", "ranking_validator", "parse_metric", "bpr_step",
           "train_bpr", "bpr_loss", "l2_penalty", "UniformNegativeSampler", "build_sampler", "checkpointing", "attach",
           "CheckpointError", "TrainingInterrupted"]
