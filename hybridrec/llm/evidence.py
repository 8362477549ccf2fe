r"""Collaborative evidence for LLM prompts: what the training graph says about each candidate.

The graph-aware template (``prompts/rank_candidates_graph.v1.txt``) shows, next to each
candidate, a few tokens of evidence from the training interactions, so the LLM can weigh
what similar users did against what the items are. With :math:`X` the binary users x
items training matrix, a user :math:`u` whose prompt lists the history items :math:`H`
and a candidate :math:`c`:

.. math::
    N_u(H) = \{v \ne u : \exists h \in H,\ X_{vh} = 1\}, \qquad
    k_c = |\{v \in N_u(H) : X_{vc} = 1\}|, \qquad
    p_c = |\{v \ne u : X_{vc} = 1\}|

* ``neighbours`` :math:`|N_u(H)|`: the other users who share at least one history item;
* ``cooccurrence`` :math:`k_c`: how many of them also interacted with the candidate;
* ``popularity`` :math:`p_c`: how many other users interacted with the candidate;
* ``rank`` (with a fitted scorer): the candidate's 1-based rank among the candidates
  under the scorer's ``score_users`` (ties to the candidate listed first).

The user themself is left out of all three counts, so a fine-tuning prompt whose history
is the items before one of the user's own training items (``exclude_user=u``) does not
count that item's own edge: its evidence is what it would be had the item been held out.
The rank is the scorer's, trained on the user's own interactions; it is not leak-free for
such prompts and is meant for ranking held-out targets.

Rendered (:meth:`EvidenceBatch.texts`), each in a few tokens:

* ``12 of 85 users like you chose it, 340 in all``: :math:`k_c`, :math:`|N_u(H)|`, :math:`p_c`;
* ``340 users chose it``: no other user shares a history item (or there is no history);
* ``new item, no interactions yet``: :math:`p_c = 0` (a cold item);
* ``; rank 3 of 20 by a graph model`` is appended with a scorer (for users in its
  training data).

Everything is batched sparse algebra: one sparse product finds every row's neighbours, a
second counts them at the candidates' columns, in chunks of :data:`CHUNK` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..data import Interactions
from ..models.base import item_sets_csr

#: Rows (users) per chunk of the sparse products, bounding memory at ``CHUNK x n_users``.
CHUNK = 256
#: Largest ``n_users * n_items`` score table kept for a scorer without embedding tables.
MAX_DENSE_SCORES = 50_000_000
#: ``LLMRanker(evidence=...)`` settings and the parts each shows.
EVIDENCE_KINDS = {"cooccurrence": ("cooccurrence",), "rank": ("rank",), "cooccurrence+rank": ("cooccurrence", "rank")}


@dataclass
class EvidenceBatch:
    """Evidence of ``B`` rows (users) x ``N`` candidates (see the module docstring).

    Attributes:
        cooccurrence: ``int64 [B, N]``, neighbours who interacted with the candidate.
        neighbours: ``int64 [B]``, other users sharing a history item.
        popularity: ``int64 [B, N]``, other users who interacted with the candidate.
        rank: ``int64 [B, N]`` rank among the row's candidates under the scorer, ``0``
            where there is none (no scorer, or a user outside its training data).
    """

    cooccurrence: np.ndarray
    neighbours: np.ndarray
    popularity: np.ndarray
    rank: np.ndarray

    def texts(self) -> list[list[str]]:
        """The rendered evidence of each row's candidates (the module docstring's forms)."""
        n = self.rank.shape[1]
        out = []
        for k_row, n_nb, p_row, r_row in zip(self.cooccurrence.tolist(), self.neighbours.tolist(),
                                             self.popularity.tolist(), self.rank.tolist()):
            out.append([_render(k, n_nb, p, r, n) for k, p, r in zip(k_row, p_row, r_row)])
        return out


def _render(k: int, n_nb: int, p: int, r: int, n: int) -> str:
    if p == 0:
        text = "new item, no interactions yet"
    elif n_nb == 0:
        text = f"{p} user{'s' if p != 1 else ''} chose it"
    else:
        text = f"{k} of {n_nb} user{'s' if n_nb != 1 else ''} like you chose it, {p} in all"
    return f"{text}; rank {r} of {n} by a graph model" if r > 0 else text


class ScoreTable:
    """A fitted scorer's scores kept as tensors: ``user_emb @ item_emb.T`` for embedding
    models (their own ``score_users``), or the whole ``[n_users, n_items]`` score table
    (``item_emb`` is ``None``) for others, up to :data:`MAX_DENSE_SCORES` entries.

    Scores come from these tensors both before and after a save, so a reloaded ranker
    ranks exactly as the one that was saved.
    """

    def __init__(self, user_emb: torch.Tensor, item_emb: torch.Tensor | None = None):
        self.user_emb = user_emb.detach().cpu().float()
        self.item_emb = None if item_emb is None else item_emb.detach().cpu().float()

    @classmethod
    def from_model(cls, model, batch_size: int = 1024) -> "ScoreTable":
        """Tables of a fitted recommender (anything with ``score_users``).

        Raises:
            ValueError: a non-embedding model whose score table would exceed
                :data:`MAX_DENSE_SCORES` entries.
        """
        from ..models.embedding import EmbeddingRecommender

        if isinstance(model, EmbeddingRecommender) and type(model).score_users is EmbeddingRecommender.score_users:
            return cls(*model.embeddings())
        n_users, n_items = len(model.user_vocab), len(model.item_vocab)
        if n_users * n_items > MAX_DENSE_SCORES:
            raise ValueError(f"rank evidence from a {type(model).__name__} model keeps its {n_users} x {n_items} "
                             f"score table (over {MAX_DENSE_SCORES:,} entries); use an embedding model "
                             "(mf, lightgcn, ngcf, hybrid, pinsage)")
        with torch.no_grad():
            rows = [model.score_users(torch.arange(s, min(s + batch_size, n_users), device=model.device)).cpu()
                    for s in range(0, n_users, batch_size)]
        return cls(torch.cat(rows) if rows else torch.zeros(0, n_items))

    def gather(self, users: np.ndarray, items: np.ndarray) -> torch.Tensor:
        """``float32 [B, N]`` scores of ``items[b]`` for ``users[b]``."""
        u, i = torch.as_tensor(users, dtype=torch.long), torch.as_tensor(items, dtype=torch.long)
        if self.item_emb is None:
            return self.user_emb[u[:, None], i]
        return torch.einsum("bd,bnd->bn", self.user_emb[u], self.item_emb[i])

    def state(self) -> dict[str, torch.Tensor]:
        """Named tensors for safetensors: ``evidence_user_emb`` and ``evidence_item_emb``,
        or ``evidence_score_table``."""
        if self.item_emb is None:
            return {"evidence_score_table": self.user_emb}
        return {"evidence_user_emb": self.user_emb, "evidence_item_emb": self.item_emb}

    @classmethod
    def from_state(cls, tensors: dict) -> "ScoreTable | None":
        """Inverse of :meth:`state`; ``None`` when ``tensors`` hold no scorer."""
        if "evidence_score_table" in tensors:
            return cls(tensors["evidence_score_table"])
        if "evidence_user_emb" in tensors:
            return cls(tensors["evidence_user_emb"], tensors["evidence_item_emb"])
        return None


def candidate_ranks(scores: torch.Tensor) -> np.ndarray:
    """1-based rank of each candidate in its row, ties to the one listed first, ``int64 [B, N]``.

    .. math:: r_{bj} = 1 + \\#\\{k : s_{bk} > s_{bj}\\} + \\#\\{k < j : s_{bk} = s_{bj}\\}
    """
    s = scores[:, None, :]  # [B, 1, N]: s[b, 0, k]
    t = scores[:, :, None]  # [B, N, 1]: s[b, j, 0]
    n = scores.shape[1]
    before = torch.arange(n)[None, :] < torch.arange(n)[:, None]  # [j, k]: k listed before j
    return (1 + (s > t).sum(2) + ((s == t) & before).sum(2)).numpy().astype(np.int64)


class GraphEvidence:
    """Per-candidate collaborative evidence from the training graph (module docstring).

    Args:
        matrix: binary users x items training matrix (:meth:`Interactions.to_csr`).
        scores: a :class:`ScoreTable` for the rank evidence, or ``None``.
    """

    def __init__(self, matrix: sp.csr_matrix, scores: ScoreTable | None = None):
        x = sp.csr_matrix(matrix, dtype=np.float32)
        x.sum_duplicates()
        x.data[:] = 1.0
        self.x, self.x_t, self.x_csc = x, x.T.tocsr(), x.tocsc()
        self.popularity = np.asarray(x.sum(0)).ravel().astype(np.int64)
        self.scores = scores

    @classmethod
    def from_interactions(cls, train: Interactions, scorer=None) -> "GraphEvidence":
        """From training interactions and, for the rank evidence, a fitted scorer on them."""
        return cls(train.to_csr(), None if scorer is None else ScoreTable.from_model(scorer))

    @property
    def n_users(self) -> int:
        return self.x.shape[0]

    @property
    def n_items(self) -> int:
        return self.x.shape[1]

    def compute(self, histories, candidates, exclude_users=None) -> EvidenceBatch:
        """Evidence of many rows at once.

        Args:
            histories: ``B`` arrays of history item indices (or a ``[B, n_items]`` sparse matrix).
            candidates: ``int [B, N]`` candidate item indices.
            exclude_users: ``int [B]``, the user each row is for: left out of every count and
                scored by the rank scorer; ``-1`` (or ``None`` for all rows) for a user not in
                the training data.

        Raises:
            ValueError: shapes disagree, or an index is outside the training graph.
        """
        cand = np.asarray(candidates, dtype=np.int64)
        if cand.ndim != 2:
            raise ValueError(f"candidates must be [B, N], got shape {cand.shape}")
        b, n = cand.shape
        hist = histories if sp.issparse(histories) else _sets_csr(histories, self.n_items)
        users = np.full(b, -1, dtype=np.int64) if exclude_users is None else np.asarray(exclude_users, dtype=np.int64)
        if hist.shape != (b, self.n_items) or users.shape != (b,):
            raise ValueError(f"{b} candidate rows need {b} histories and users, got {hist.shape[0]} and {users.shape}")
        if cand.size and (cand.min() < 0 or cand.max() >= self.n_items):
            raise ValueError(f"candidate item index outside the training graph's {self.n_items} items")
        if (users >= self.n_users).any() or (users < -1).any():
            raise ValueError(f"user index outside the training graph's {self.n_users} users (-1: none)")
        co = np.zeros((b, n), dtype=np.int64)
        nb = np.zeros(b, dtype=np.int64)
        for s in range(0, b, CHUNK):
            co[s:s + CHUNK], nb[s:s + CHUNK] = self._cooccurrence(hist[s:s + CHUNK], cand[s:s + CHUNK],
                                                                  users[s:s + CHUNK])
        own = np.zeros((b, n), dtype=np.int64)
        known = users >= 0
        if known.any():  # the user's own edges to the candidates, taken out of popularity
            rows = np.repeat(users[known], n)
            own[known] = np.asarray(self.x[rows, cand[known].ravel()]).reshape(-1, n).astype(np.int64)
        pop = self.popularity[cand] - own
        rank = np.zeros((b, n), dtype=np.int64)
        if self.scores is not None and known.any():
            rank[known] = candidate_ranks(self.scores.gather(users[known], cand[known]))
        return EvidenceBatch(co, nb, pop, rank)

    def for_user(self, history, candidates, exclude_user: int = -1) -> EvidenceBatch:
        """:meth:`compute` for one row: ``history`` and ``candidates`` are item index lists."""
        return self.compute([np.asarray(history, dtype=np.int64)], np.asarray(candidates, dtype=np.int64)[None, :],
                            np.array([exclude_user]))

    def _cooccurrence(self, hist: sp.csr_matrix, cand: np.ndarray, users: np.ndarray):
        """``(k [b, N], neighbours [b])`` of one chunk: two sparse products."""
        shared = (hist @ self.x_t).tocoo()  # [b, n_users]: history items shared with each user
        keep = (shared.data > 0) & (shared.col != users[shared.row])
        nb_mat = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (shared.row[keep], shared.col[keep])),
                               shape=shared.shape)
        cols, inverse = np.unique(cand, return_inverse=True)
        counts = (nb_mat @ self.x_csc[:, cols]).toarray()  # [b, distinct candidates]
        k = counts[np.arange(len(cand))[:, None], inverse.reshape(cand.shape)]
        return np.rint(k).astype(np.int64), np.diff(nb_mat.indptr).astype(np.int64)

    # -- persistence: the graph is rebuilt from the ranker's saved histories ---------------------
    def state(self) -> dict[str, torch.Tensor]:
        """Tensors to save beside the histories (the rank scorer's tables, if any)."""
        return {} if self.scores is None else self.scores.state()


def _sets_csr(sets, n_items: int) -> sp.csr_matrix:
    """Binary CSR of item index sets (:func:`~hybridrec.models.base.item_sets_csr`), range-checked."""
    sets = [np.asarray(h, dtype=np.int64).ravel() for h in sets]
    flat = np.concatenate(sets) if sets else np.zeros(0, dtype=np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= n_items):
        raise ValueError(f"history item index outside the training graph's {n_items} items")
    return item_sets_csr(sets, n_items)


# -- the ranker's evidence settings ---------------------------------------------------------
def check_evidence_setting(evidence, template, evidence_model) -> None:
    """``evidence``, the template and the scorer must agree: none is silently ignored.

    Raises:
        ValueError: an unknown kind; a template with ``{evidence}`` and no evidence, or the
            other way round; ``evidence_model`` without the rank evidence, or not a recommender.
    """
    if evidence is not None and evidence not in EVIDENCE_KINDS:
        raise ValueError(f"evidence must be None or one of {sorted(EVIDENCE_KINDS)}, got {evidence!r}")
    if template.needs_evidence and evidence is None:
        raise ValueError(f"template {template.name!r} shows each candidate's evidence: set evidence="
                         "'cooccurrence' (or 'rank' / 'cooccurrence+rank' with evidence_model=)")
    if evidence is not None and not template.needs_evidence:
        raise ValueError(f"evidence={evidence!r} needs a template with an {{evidence}} field, and "
                         f"{template.name!r} has none: use template='rank_candidates_graph'")
    if evidence_model is not None and "rank" not in EVIDENCE_KINDS.get(evidence, ()):
        raise ValueError("evidence_model gives the rank evidence: set evidence='rank' or 'cooccurrence+rank'")
    if evidence_model is not None and not hasattr(evidence_model, "score_users"):
        raise ValueError(f"evidence_model must be a fitted recommender with score_users, got "
                         f"{type(evidence_model).__name__}")


def check_scorer(scorer, train: Interactions) -> None:
    """The rank evidence's scorer must be fitted on ``train``'s users and items.

    Raises:
        ValueError: no scorer, an unfitted one, or one fitted on other users or items.
    """
    if scorer is None:
        raise ValueError("the rank evidence ranks the candidates with a fitted recommender: pass "
                         "evidence_model= (e.g. a LightGCN fitted on the same training data)")
    if getattr(scorer, "item_vocab", None) is None or getattr(scorer, "user_vocab", None) is None:
        raise ValueError("evidence_model is not fitted: fit it on the same training data first")
    if scorer.item_vocab.to_list() != train.item_vocab.to_list() or \
            scorer.user_vocab.to_list() != train.user_vocab.to_list():
        raise ValueError("evidence_model was fitted on other users or items than this training data")


def history_graph(ptr: np.ndarray, items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """The binary users x items training graph from per-user item lists (user ``u``'s at
    ``items[ptr[u]:ptr[u + 1]]``, as the ranker keeps and saves them)."""
    users = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(len(ptr) - 1, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m
