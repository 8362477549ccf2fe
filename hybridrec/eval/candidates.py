r"""Candidate-ranking evaluation: each test user ranks their target among ``N - 1`` negatives.

The protocol of LLM-ranker papers (e.g. Hou et al., ECIR 2024), where scoring the whole
catalogue per user is out of reach:

* **target**: per test user, the held-out item; a user with several test items keeps the
  last one by time (ties: the later row; row order without timestamps). Test items the
  user already met in the masked parts (training, and validation when the target is the
  test set) are not targets; users left with none are skipped.
* **candidates**: the target plus ``N - 1`` negatives drawn uniformly, without
  replacement, from the items the user never interacted with anywhere in the split
  (``pool="all"``: the whole catalogue; ``"train"``: items with a training interaction),
  in a seeded random order, so list position says nothing about the target. Optionally
  only ``n_users`` seeded-random test users. The lists are tensors, saved as safetensors
  plus JSON, so every model is scored on the same lists.
* **metrics** from the 1-based rank :math:`r` of the target among the ``N`` candidates
  (ties broken by list position, i.e. at random): with one relevant item,
  :math:`\mathrm{NDCG@K} = \mathbb{1}[r \le K] / \log_2(r + 1)`,
  :math:`\mathrm{Recall@K} = \mathrm{HitRate@K} = \mathbb{1}[r \le K]`,
  :math:`\mathrm{MRR} = 1 / r`; groups ``all``, ``warm`` and ``cold`` (target item without
  training interactions). :func:`random_reference` gives each metric's exact expectation
  under a random ranking.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data import Split
from ..io import atomic_folder, save_tensors, write_json
from . import metrics as M
from .groups import cold_item_mask
from .table import format_table
from .result import EvalResult

DEFAULT_CANDIDATE_METRICS = ("ndcg", "recall", "hitrate", "mrr")


@dataclass
class CandidateSet:
    """Per-user candidate lists over a split's vocabularies.

    Attributes:
        users: ``int64 [U]`` user indices.
        items: ``int64 [U, N]`` candidate item indices; exactly one is the target.
        target_pos: ``int64 [U]`` column of the target in ``items``.
        target_cold: ``bool [U]`` the target item has no training interaction.
        info: how the lists were made (seed, pool, counts), and ``user_ids`` /
            ``item_vocab_sha256`` to check a loaded set against a split.
    """

    users: torch.Tensor
    items: torch.Tensor
    target_pos: torch.Tensor
    target_cold: torch.Tensor
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_candidates(self) -> int:
        return int(self.items.shape[1])

    @property
    def targets(self) -> torch.Tensor:
        """``int64 [U]`` target item of each user."""
        return self.items.gather(1, self.target_pos[:, None])[:, 0]

    def save(self, path: str | os.PathLike) -> Path:
        """Write folder ``path`` (``candidates.safetensors`` + ``candidates.json``) atomically."""
        def fill(folder: Path) -> None:
            save_tensors(folder / "candidates.safetensors",
                         {"users": self.users, "items": self.items, "target_pos": self.target_pos,
                          "target_cold": self.target_cold.to(torch.uint8)})
            write_json(folder / "candidates.json", {"format": 1, **self.info}, indent=1)

        return atomic_folder(path, fill)

    @classmethod
    def load(cls, path: str | os.PathLike, split: Split | None = None) -> "CandidateSet":
        """Read a folder written by :meth:`save`; with ``split``, check it was built on it.

        Raises:
            FileNotFoundError: the folder lacks the two files.
            ValueError: the lists were built on another catalogue or other users.
        """
        from safetensors.torch import load_file

        path = Path(path)
        meta, weights = path / "candidates.json", path / "candidates.safetensors"
        if not meta.is_file() or not weights.is_file():
            raise FileNotFoundError(f"{path} holds no candidate lists (needs candidates.json and "
                                    "candidates.safetensors); build them with build_candidates(split)")
        info = json.loads(meta.read_text())
        info.pop("format", None)
        t = load_file(str(weights))
        out = cls(t["users"], t["items"], t["target_pos"], t["target_cold"].bool(), info)
        if split is not None:
            if info.get("item_vocab_sha256") != _vocab_hash(split):
                raise ValueError(f"candidate lists in {path} were built on another item catalogue than "
                                 f"this split's ({split.n_items} items); rebuild them with build_candidates(split)")
            ids = split.train.user_vocab.lookup(out.users.numpy()).tolist()
            if ids != info.get("user_ids"):
                raise ValueError(f"candidate lists in {path} name other users than this split's; "
                                 "rebuild them with build_candidates(split)")
        return out


def _vocab_hash(split: Split) -> str:
    return hashlib.sha256("\x1f".join(split.train.item_vocab.to_list()).encode()).hexdigest()


def _targets(split: Split, target: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(users, their target item, users skipped because every held-out item was seen)."""
    from .evaluator import target_parts

    held, masked = target_parts(split, target)
    n_items = split.n_items
    seen = np.unique(np.concatenate([p.users * n_items + p.items for p in masked]))
    keep = ~np.isin(held.users * n_items + held.items, seen)
    all_users = np.unique(held.users)
    ts = held.timestamps if held.timestamps is not None else np.zeros(len(held), dtype=np.int64)
    rows = np.flatnonzero(keep)
    order = rows[np.lexsort((rows, ts[rows], held.users[rows]))]  # by user, then time, then row
    u = held.users[order]
    last = np.r_[u[1:] != u[:-1], True] if len(u) else np.zeros(0, dtype=bool)
    return u[last], held.items[order][last], len(all_users) - int(last.sum())


def build_candidates(split: Split, n_candidates: int = 20, *, n_users: int | None = None, seed: int = 0,
                     target: str = "test", pool: str = "all") -> CandidateSet:
    """Candidate lists for the split's held-out users (see the module docstring).

    Args:
        split: e.g. ``make_split(data, "leave_last_out", n_test=1)``.
        n_candidates: list length ``N`` (the target and ``N - 1`` negatives).
        n_users: evaluate a seeded random subset of this many users; ``None`` = all.
        seed: seeds the user subset, the negatives and the list order.
        target: ``"test"`` or ``"valid"``.
        pool: where negatives come from: ``"all"`` items or ``"train"`` (items with a
            training interaction).

    Raises:
        ValueError: bad settings, no held-out user, or a user with fewer than ``N - 1``
            never-seen items in the pool (the message names the user).
    """
    n = int(n_candidates)
    if n < 2:
        raise ValueError(f"n_candidates must be >= 2 (the target and a negative), got {n_candidates}")
    if pool not in ("all", "train"):
        raise ValueError(f"pool must be 'all' or 'train', got {pool!r}")
    rng = np.random.default_rng(seed)
    users, targets, skipped = _targets(split, target)
    if not len(users):
        raise ValueError(f"no user has a held-out {target} item that they did not already see in training")
    if n_users is not None:
        if int(n_users) < 1:
            raise ValueError(f"n_users must be >= 1 or None, got {n_users}")
        pick = np.sort(rng.choice(len(users), size=min(int(n_users), len(users)), replace=False))
        users, targets = users[pick], targets[pick]
    n_items = split.n_items
    pool_items = np.arange(n_items) if pool == "all" else np.flatnonzero(split.train.item_counts() > 0)
    parts = [p for p in (split.train, split.valid, split.test) if p is not None]
    seen = np.unique(np.concatenate([p.users * n_items + p.items for p in parts]))
    negatives = _sample_negatives(rng, users, seen, pool_items, n_items, n - 1)
    pos = rng.integers(0, n, size=len(users))
    is_target = np.arange(n)[None, :] == pos[:, None]
    items = np.empty((len(users), n), dtype=np.int64)
    items[is_target] = targets
    items[~is_target] = negatives.ravel()
    info = {"n_candidates": n, "seed": int(seed), "pool": pool, "target": target,
            "n_users_requested": n_users, "users_skipped_seen_target": skipped,
            "split_kind": split.kind, "item_vocab_sha256": _vocab_hash(split),
            "user_ids": split.train.user_vocab.lookup(users).tolist()}
    return CandidateSet(torch.as_tensor(users), torch.as_tensor(items), torch.as_tensor(pos),
                        torch.as_tensor(cold_item_mask(split)[targets]), info)


def _sample_negatives(rng, users, seen_keys, pool_items, n_items, need) -> np.ndarray:
    """``[U, need]`` distinct pool items per user, none in ``seen_keys`` (``user * n_items + item``).

    Draws a block of random pool items per user and keeps the first ``need`` that are
    unseen and not repeated in the row (uniform sampling without replacement); rows that
    come up short are drawn again with a block twice as wide.
    """
    in_pool = np.zeros(n_items, dtype=bool)
    in_pool[pool_items] = True
    s_users, s_items = np.divmod(seen_keys, n_items)
    blocked = np.bincount(s_users[in_pool[s_items]], minlength=int(users.max()) + 1)[users]
    short = np.flatnonzero(len(pool_items) - blocked < need)
    if short.size:
        u = int(users[short[0]])
        raise ValueError(f"{short.size} user(s) have fewer than {need} never-seen items to sample negatives "
                         f"from (user index {u}: {len(pool_items) - blocked[short[0]]}); use a smaller "
                         "n_candidates, or pool='all'")
    out = np.empty((len(users), need), dtype=np.int64)
    todo, width = np.arange(len(users)), 2 * need + 8
    while todo.size:
        draws = pool_items[rng.integers(0, len(pool_items), size=(todo.size, width))]
        keys = users[todo][:, None] * n_items + draws
        first = np.zeros(keys.size, dtype=bool)
        first[np.unique(keys.ravel(), return_index=True)[1]] = True  # first occurrence in its row
        ok = first.reshape(keys.shape) & ~_isin_sorted(keys, seen_keys)
        count = np.cumsum(ok, axis=1)
        done = count[:, -1] >= need
        out[todo[done]] = draws[done][(ok & (count <= need))[done]].reshape(-1, need)
        todo, width = todo[~done], width * 2
    return out


def _isin_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if not sorted_keys.size:
        return np.zeros(values.shape, dtype=bool)
    idx = np.searchsorted(sorted_keys, values).clip(max=sorted_keys.size - 1)
    return sorted_keys[idx] == values


# -- scoring and metrics ---------------------------------------------------------------
def target_ranks(scores: torch.Tensor, target_pos: torch.Tensor) -> torch.Tensor:
    """1-based rank of each row's target among its candidates, ``int64 [U]``.

    .. math:: r_u = 1 + \\#\\{c : s_{uc} > s_{ut}\\} + \\#\\{c < t : s_{uc} = s_{ut}\\}

    Ties go to the candidate listed first; lists are in random order, so this is a
    seeded random tie-break (a constant scorer ranks the target uniformly at random).
    """
    t = scores.gather(1, target_pos[:, None])
    before = torch.arange(scores.shape[1], device=scores.device)[None, :] < target_pos[:, None]
    return 1 + (scores > t).sum(1) + ((scores == t) & before).sum(1)


def random_reference(n_candidates: int, ks=(1, 5, 10), metrics=DEFAULT_CANDIDATE_METRICS) -> dict[str, float]:
    """Exact expected metrics of a uniformly random ranking of ``N`` candidates.

    The target's rank is uniform on ``1..N``, so
    :math:`E[\\mathrm{NDCG@K}] = \\frac{1}{N} \\sum_{r=1}^{\\min(K,N)} \\frac{1}{\\log_2(r+1)}`,
    :math:`E[\\mathrm{Recall@K}] = E[\\mathrm{HR@K}] = \\min(K, N) / N`,
    :math:`E[\\mathrm{MRR}] = \\frac{1}{N} \\sum_{r=1}^{N} \\frac{1}{r}` (``mrr@K`` sums to K).
    """
    n = int(n_candidates)
    r = torch.arange(1, n + 1, dtype=torch.float64)
    per_rank = torch.eye(n, dtype=torch.float64)  # row r-1: the target at rank r
    values = M.compute(per_rank, torch.ones(n), r, [k for k in ks if k <= n], metrics)
    return {key: float(v.mean()) for key, v in values.items()}


def _scores(scorer, c: CandidateSet, batch_size: int) -> tuple[torch.Tensor, dict]:
    """``[U, N]`` scores of the candidates and, for scorers that report one, their cost."""
    if hasattr(scorer, "score_candidates"):
        out = scorer.score_candidates(c.users, c.items)
        cost = out.cost() if callable(getattr(out, "cost", None)) else {}
        return torch.as_tensor(getattr(out, "scores", out)), cost
    if hasattr(scorer, "score_users"):
        device = getattr(scorer, "device", None) or "cpu"
        rows = []
        with torch.no_grad():
            for start in range(0, len(c), batch_size):
                u = c.users[start:start + batch_size].to(device)
                s = scorer.score_users(u)
                rows.append(s.gather(1, c.items[start:start + batch_size].to(s.device)).detach().cpu())
        return (torch.cat(rows) if rows else torch.zeros(0, c.n_candidates)), {}
    if callable(scorer):
        return torch.as_tensor(scorer(c.users, c.items)), {}
    raise TypeError(f"scorer must have score_candidates(users, items), score_users(users), or be a "
                    f"callable (users, items) -> [U, N]; got {type(scorer).__name__}")


def evaluate_candidates(scorer, candidates: CandidateSet, ks=(1, 5, 10), *,
                        metrics=DEFAULT_CANDIDATE_METRICS, batch_size: int = 1024) -> EvalResult:
    """Rank every user's candidate list with ``scorer`` and average the metrics per group.

    Args:
        scorer: an :class:`~hybridrec.llm.LLMRanker` or anything with
            ``score_candidates(users, items) -> [U, N]`` (or an object with ``.scores``
            and ``.cost()``), a fitted :class:`~hybridrec.models.Recommender` (its
            ``score_users`` rows are gathered at the candidates), or a callable
            ``(users [U], items [U, N]) -> [U, N]``. Higher is better.
        candidates: from :func:`build_candidates` or :meth:`CandidateSet.load`.
        ks: cut-offs, each at most ``N``.
        metrics: names from :data:`hybridrec.eval.metrics.METRICS`.
        batch_size: users per ``score_users`` call.

    Returns:
        :class:`EvalResult` with groups ``all``, ``warm`` and (when some target is cold)
        ``cold``; ``info`` holds ``protocol``, ``n_candidates``, ``random`` (see
        :func:`random_reference`), ``seconds`` and any cost the scorer reported.

    Raises:
        ValueError: a cut-off above ``N``, scores of the wrong shape, or NaN scores.
    """
    ks = tuple(sorted({int(k) for k in ((ks,) if isinstance(ks, int) else ks)}))
    n = candidates.n_candidates
    if not ks or ks[0] < 1 or ks[-1] > n:
        raise ValueError(f"ks must be integers in 1..{n} (the number of candidates), got {ks}")
    names = M.check_metrics(metrics)
    start = time.perf_counter()
    scores, cost = _scores(scorer, candidates, int(batch_size))
    if scores.shape != candidates.items.shape:
        raise ValueError(f"the scorer returned {tuple(scores.shape)} scores for "
                         f"{tuple(candidates.items.shape)} candidates")
    scores = scores.detach().cpu().double()
    if torch.isnan(scores).any():
        bad = int(torch.isnan(scores).any(1).nonzero()[0])
        raise ValueError(f"the scorer returned NaN scores (first for user index {int(candidates.users[bad])})")
    rank = target_ranks(scores, candidates.target_pos)
    hits = torch.arange(1, n + 1)[None, :] == rank[:, None]
    per_user = M.compute(hits[:, :ks[-1]], torch.ones(len(rank)), rank, ks, names)
    cold = candidates.target_cold.bool()
    masks = {"all": torch.ones_like(cold), "warm": ~cold}
    if cold.any():
        masks["cold"] = cold
    result = EvalResult(
        metrics={g: {k: float(v[m].mean()) if m.any() else float("nan") for k, v in per_user.items()}
                 for g, m in masks.items()},
        n_users={g: int(m.sum()) for g, m in masks.items()},
        n_items={g: n for g in masks},
        ks=ks,
        target=candidates.info.get("target", "test"),
        info={"protocol": "candidates", "n_candidates": n, "seed": candidates.info.get("seed"),
              "random": random_reference(n, ks, names), "seconds": time.perf_counter() - start, **cost},
    )
    return result


def candidates_table(result: EvalResult, digits: int = 4) -> str:
    """:meth:`EvalResult.table` with a ``random`` row: the expectation of a random ranking."""
    rows = dict(result.metrics)
    users = dict(result.n_users)
    if "random" in result.info:
        rows["random"] = result.info["random"]
        users["random"] = users.get("all", 0)
    return format_table(rows, users, digits=digits)
