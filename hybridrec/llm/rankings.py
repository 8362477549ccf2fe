"""What the LLM ranker returns: one user's :class:`Ranking`, many users'
:class:`CandidateScores`, and :func:`parse_choice`, which reads a generated reply as a
choice among the candidates (or none)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Ranking:
    """One user's ranking of ``N`` candidates, with what it cost.

    Attributes:
        scores: ``float64 [N]`` in the order the candidates were given; higher is better.
        order: ``int64 [N]``, candidate positions best first (a permutation of ``range(N)``).
        prompt_tokens: prompt tokens run through the model (summed over shuffles).
        scored_tokens: answer tokens scored (summed over shuffles and candidates).
        seconds: wall-clock time.
        choice: ``method="generate"``: the candidate the reply named, else ``None``.
        malformed: ``method="generate"``: the reply named no candidate.
    """

    scores: np.ndarray
    order: np.ndarray
    prompt_tokens: int
    scored_tokens: int
    seconds: float
    choice: int | None = None
    malformed: bool = False


@dataclass
class CandidateScores:
    """Scores of many users' candidate lists (:meth:`LLMRanker.score_candidates`).

    Attributes:
        scores: ``float64 [U, N]``, aligned with the candidate lists given.
        prompt_tokens, scored_tokens: ``int64 [U]`` per user.
        seconds: ``float64 [U]`` per user.
        malformed: ``bool [U]``, generate-mode replies that named no candidate.
    """

    scores: torch.Tensor
    prompt_tokens: torch.Tensor
    scored_tokens: torch.Tensor
    seconds: torch.Tensor
    malformed: torch.Tensor

    def cost(self) -> dict[str, float]:
        """Per-user means and totals, for reports."""
        return {
            "prompt_tokens_per_user": float(self.prompt_tokens.double().mean()),
            "scored_tokens_per_user": float(self.scored_tokens.double().mean()),
            "seconds_per_user": float(self.seconds.mean()),
            "seconds_total": float(self.seconds.sum()),
            "malformed": int(self.malformed.sum()),
        }


_NUMBER = re.compile(r"\d+")


def parse_choice(reply: str, labels: list[str], texts: list[str]) -> int | None:
    """The candidate position a generated reply names, or ``None``.

    The first number in the reply counts if it is a label; otherwise the longest candidate
    text the reply contains (case-insensitive). A reply can only select among the
    candidates: anything else is ``None`` (malformed).
    """
    m = _NUMBER.search(reply)
    if m and m.group() in labels:
        return labels.index(m.group())
    low = reply.casefold()
    hits = [(len(t), j) for j, t in enumerate(texts) if t and t.casefold() in low]
    return max(hits)[1] if hits else None
