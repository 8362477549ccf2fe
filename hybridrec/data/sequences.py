"""Time-ordered user histories as CSR arrays ``(indptr [n_users + 1], items)``.

Each user's items run oldest to newest (timestamps, else the order of the rows), one entry
per distinct item at its last interaction. PinSage scores a user through the mean of their
most recent items and draws next-item training queries from the items before a positive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .interactions import Interactions


def recent_items(train: Interactions, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each user's ``k`` most recent distinct training items (timestamps, else row order),
    as CSR arrays ``(indptr [n_users + 1], items)``."""
    df = pd.DataFrame({"u": train.users, "i": train.items, "r": np.arange(len(train)),
                       "t": train.timestamps if train.timestamps is not None else 0})
    df = df.sort_values(["u", "t", "r"], kind="stable").drop_duplicates(["u", "i"], keep="last")
    df = df.groupby("u", sort=False).tail(k)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(df["u"].to_numpy(), minlength=train.n_users))])
    items = torch.as_tensor(df["i"].to_numpy(copy=True), dtype=torch.long)
    return torch.as_tensor(indptr, dtype=torch.long), items


def history_tail(history: tuple[torch.Tensor, torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The last ``k`` items of each user of a CSR ``history`` (as from :func:`recent_items`):
    ``recent_items(train, k)`` from ``recent_items(train, n)`` for any ``n >= k``."""
    ptr, items = history
    counts = ptr[1:] - ptr[:-1]
    owner = torch.repeat_interleave(torch.arange(len(counts), device=ptr.device), counts)
    keep = torch.arange(len(items), device=ptr.device) >= ptr[1:][owner] - k
    new_ptr = torch.zeros_like(ptr)
    torch.cumsum(counts.clamp(max=k), 0, out=new_ptr[1:])
    return new_ptr, items[keep]


def history_means(history: tuple[torch.Tensor, torch.Tensor], item_emb: torch.Tensor) -> torch.Tensor:
    """Each user's mean item vector over a CSR ``history`` (``(indptr, items)``, as from
    :func:`recent_items`), ``[n_users, d]``; users with no items get zeros."""
    ptr, items = history
    counts = (ptr[1:] - ptr[:-1]).to(item_emb.device)
    owner = torch.repeat_interleave(torch.arange(len(counts), device=item_emb.device), counts)
    sums = torch.zeros(len(counts), item_emb.shape[1], device=item_emb.device, dtype=item_emb.dtype)
    sums.index_add_(0, owner, item_emb[items.to(item_emb.device)])
    return sums / counts.clamp_min(1)[:, None].to(item_emb.dtype)
