"""Training examples for fine-tuning the LLM ranker, from the training interactions only,
and their loss.

One example is one candidate list, as :meth:`~.ranker.LLMRanker.rank` sees it at test
time: for a user with time-ordered training items :math:`s_1 \\ldots s_L`, a later item
:math:`s_p` (one of the last ``examples_per_user`` positions, :math:`p \\ge 2`) is the
target, :math:`s_{p-h} \\ldots s_{p-1}` (``h`` = the ranker's ``history_len``) the history,
and ``n_candidates - 1`` items the user never touched in training, drawn uniformly from the
items with a training interaction (``negatives="train"``) or from all items (``"all"``), the
negatives; the target goes to a random position of the list. The sequences are the
ranker's own (:meth:`~.ranker.LLMRanker.user_sequence`), so examples and test-time
histories are cut from one time order. Everything is drawn from
``numpy`` generators seeded by ``(seed, user)``, so a user's examples do not depend on
which other users were picked. Test interactions are never seen here.

The prompt of an example is built by the ranker's public
:meth:`~.ranker.LLMRanker.build_prompt`, the same token ids ``rank()`` scores;
:func:`example_loss` runs the answers after it with gradients.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass

import numpy as np
import torch

from ..data import Interactions


@dataclass(frozen=True)
class Example:
    """One training candidate list (item indices of the ranker's vocabulary).

    Attributes:
        user: user index.
        target: the held-in training item the prompt's answer names.
        history: ``int64 [<= history_len]``, the items before ``target``, oldest first.
        candidates: ``int64 [n_candidates]`` in prompt order; ``target`` once, the rest unseen.
        position: index of ``target`` in ``candidates``.
    """

    user: int
    target: int
    history: np.ndarray
    candidates: np.ndarray
    position: int


def sample_unseen(rng: np.random.Generator, pool: np.ndarray, seen: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct items drawn uniformly from ``pool`` less ``seen`` (sorted), by rejection."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < k:
        draw = pool[rng.integers(0, len(pool), size=2 * (k - len(out)) + 8)]
        both = np.concatenate([out, draw[~np.isin(draw, seen)]])
        _, first = np.unique(both, return_index=True)
        out = both[np.sort(first)][:k]
    return out


def build_examples(ranker, train: Interactions, cfg) -> list[Example]:
    """Candidate lists for fine-tuning ``ranker`` on ``train`` (see the module docstring).

    The ranker is fitted on ``train`` first if it is not fitted yet; a ranker fitted on
    other training interactions is an error (its item texts or sequences would not match).

    Args:
        ranker: an :class:`~.ranker.LLMRanker`.
        train: training interactions (only these are read).
        cfg: a :class:`~.finetune.FineTuneConfig` (``n_candidates``, ``negatives``,
            ``examples_per_user``, ``max_train_users``, ``seed``).

    Raises:
        ValueError: a ranker fitted on other interactions, or no user with two training
            items and enough unseen items for ``n_candidates``.
    """
    counts = np.bincount(train.users, minlength=train.n_users)
    if ranker.item_vocab is None:
        ranker.fit(train)
    elif (ranker.item_vocab != train.item_vocab or ranker.user_vocab != train.user_vocab
          or any(len(ranker.user_sequence(u)) != c for u, c in enumerate(counts.tolist()))):
        raise ValueError("the ranker was fitted on other training interactions than `train`: fit it on the "
                         "same ones (or pass an unfitted ranker)")
    seqs = [ranker.user_sequence(u) for u in range(train.n_users)]
    pool = (np.flatnonzero(train.item_counts() > 0) if cfg.negatives == "train"
            else np.arange(train.n_items)).astype(np.int64)
    n_neg = cfg.n_candidates - 1
    # every training item is in either pool, so a user's unseen pool items are the pool less their items
    n_unseen = np.array([len(pool) - len(np.unique(seq)) for seq in seqs])
    eligible = np.flatnonzero((counts >= 2) & (n_unseen >= n_neg))
    if len(eligible) == 0:
        raise ValueError(f"no user has 2 or more training items and {n_neg} unseen items among the "
                         f"{len(pool)} negatives={cfg.negatives!r} items for n_candidates={cfg.n_candidates}: "
                         "lower n_candidates or use more data")
    if cfg.max_train_users is not None and cfg.max_train_users < len(eligible):
        pick = np.random.default_rng([cfg.seed, 1]).choice(len(eligible), cfg.max_train_users, replace=False)
        eligible = eligible[np.sort(pick)]
    hist_len = ranker.history_len
    examples = []
    for u in eligible.tolist():
        seq = seqs[u]
        seen = np.unique(seq)
        rng = np.random.default_rng([cfg.seed, 0, u])
        for p in range(max(1, len(seq) - cfg.examples_per_user), len(seq)):
            negatives = sample_unseen(rng, pool, seen, n_neg)
            pos = int(rng.integers(0, cfg.n_candidates))
            cands = np.insert(negatives, pos, seq[p])
            history = seq[max(0, p - hist_len):p] if hist_len else seq[:0]
            examples.append(Example(u, int(seq[p]), history.copy(), cands, pos))
    return examples


def examples_digest(examples: list[Example]) -> str:
    """SHA-256 of the examples' content: a checkpoint is resumed only on the same examples."""
    h = hashlib.sha256()
    for e in examples:
        h.update(np.array([e.user, e.target, e.position, len(e.history)], dtype=np.int64).tobytes())
        h.update(e.history.astype(np.int64).tobytes() + e.candidates.astype(np.int64).tobytes())
    return h.hexdigest()


def _answer_scores(model, seqs: list[list[int]], starts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of ``seq[start:]`` given ``seq[:start]`` for each sequence,
    and the token counts: one right-padded forward pass (a causal model never lets a real
    token see the pads after it) that computes logits only where answer tokens are predicted."""
    device = next(model.parameters()).device
    lens = torch.tensor([len(s) for s in seqs])
    ids = torch.zeros(len(seqs), int(lens.max()), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s)
    keep = torch.tensor(sorted({t - 1 for s, a in zip(seqs, starts) for t in range(a, len(s))}))
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        logits = model(input_ids=ids.to(device), use_cache=False, logits_to_keep=keep.to(device)).logits
    else:
        logits = model(input_ids=ids.to(device), use_cache=False).logits[:, keep.to(device)]
    logits = logits.float()
    targets = ids[:, keep + 1].to(device)
    mask = ((keep[None, :] + 1 >= torch.tensor(starts)[:, None]) & (keep[None, :] + 1 < lens[:, None])).to(device)
    lp = logits.gather(-1, targets[..., None])[..., 0] - logits.logsumexp(-1)
    return (lp * mask).sum(1), mask.sum(1)


def example_loss(model, ranker, examples: list[Example], listwise: float = 0.0) -> tuple[torch.Tensor, int]:
    """Summed loss of ``examples`` (:mod:`.finetune` gives the formula) and the tokens run."""
    seqs, starts, rows = [], [], []
    for e in examples:
        # user= leaves the user out of a graph-evidence template's counts (the target's own edge)
        prefix, answers, _ = ranker.build_prompt(e.history, e.candidates, user=e.user)
        chosen = range(len(answers)) if listwise > 0 else [e.position]
        rows.append((len(seqs), len(chosen), e.position if listwise > 0 else 0))
        seqs += [prefix + answers[j] for j in chosen]
        starts += [len(prefix)] * len(chosen)
    lp, n = _answer_scores(model, seqs, starts)
    loss = lp.new_zeros(())
    for first, count, target in rows:
        s_lp, s_n = lp[first:first + count], n[first:first + count]
        loss = loss - s_lp[target] / s_n[target]
        if listwise > 0:
            s = s_lp / s_n if ranker.normalize == "mean" else s_lp
            loss = loss - listwise * torch.log_softmax(s, 0)[target]
    return loss, sum(len(s) for s in seqs)
