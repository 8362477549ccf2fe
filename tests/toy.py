"""A tiny known-answer data set: two taste blocks that any collaborative model separates."""

from __future__ import annotations

import numpy as np

from hybridrec.data import Interactions, Split, Vocabulary


def block_split(n_per_block: int = 12, seed: int = 0) -> Split:
    """Users ``u0..`` of block A interact with items of block A, block B likewise.

    Each user has 8 training items and 2 test items inside its own block; items are named
    ``a0..`` and ``b0..``. A model that learns the blocks ranks every test item above every
    item of the other block. Item ``a0`` is the most popular item overall.
    """
    rng = np.random.default_rng(seed)
    n = n_per_block
    users = Vocabulary([f"u{i}" for i in range(2 * n)], kind="user")
    items = Vocabulary([f"a{i}" for i in range(n)] + [f"b{i}" for i in range(n)], kind="item")
    tr_u, tr_i, te_u, te_i = [], [], [], []
    for u in range(2 * n):
        block = 0 if u < n else n
        chosen = rng.permutation(n)[:10] + block
        if u < n and block + 0 not in chosen[:8]:
            chosen[0] = block  # every block-A user has a0 in training: a0 is the most popular
            chosen = np.unique(chosen)
            chosen = np.concatenate([chosen, np.setdiff1d(np.arange(block, block + n), chosen)])[:10]
        tr_u += [u] * 8
        tr_i += list(chosen[:8])
        te_u += [u] * 2
        te_i += list(chosen[8:10])
    train = Interactions(np.array(tr_u), np.array(tr_i), users, items, name="blocks")
    test = Interactions(np.array(te_u), np.array(te_i), users, items, name="blocks")
    return Split(train=train, test=test, kind="given")
