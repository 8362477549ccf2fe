"""Losses for implicit-feedback ranking."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    r"""Bayesian Personalised Ranking loss (Rendle et al. 2009), averaged over the batch.

    .. math::
        \mathcal{L}_{BPR} = -\frac{1}{B} \sum_{(u,i,j)} \ln \sigma(\hat y_{ui} - \hat y_{uj})

    Args:
        pos_scores: scores of observed (user, item) pairs, ``[B]``.
        neg_scores: scores of sampled unobserved pairs for the same users, ``[B]``.
    """
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def l2_penalty(*embeddings: torch.Tensor) -> torch.Tensor:
    r"""L2 penalty on a batch's initial embeddings, as in LightGCN's reference code.

    .. math::
        \Omega = \frac{1}{2B} \sum_{e \in \text{batch}} \lVert e \rVert_2^2

    Args:
        embeddings: ``[B, d]`` tensors (e.g. users, positives, negatives at layer 0).
    """
    batch = embeddings[0].shape[0]
    return sum(e.pow(2).sum() for e in embeddings) / (2 * batch)
