"""The one in-memory form of a data set: who interacted with what, when, and item text."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .vocab import Vocabulary

#: Text columns an item table may carry; loaders fill the ones their source has.
TEXT_FIELDS = ("title", "description", "genres", "tags")

#: ``meta`` keys holding one value per interaction (e.g. a loader's train/test ``fold``);
#: :meth:`Interactions.subset` slices them along with the rows.
ROW_META_KEYS = ("fold",)


@dataclass
class Interactions:
    """User-item interactions over a fixed user and item vocabulary.

    Rows are parallel arrays of contiguous indices. Every split of a data set shares the
    same two vocabularies, so index ``i`` means the same item in train, validation and test,
    and the item table covers the whole catalogue (items with no interactions included).

    Attributes:
        users: user index per interaction, ``int64 [n]``.
        items: item index per interaction, ``int64 [n]``.
        user_vocab: external user ids.
        item_vocab: external item ids.
        timestamps: unix seconds per interaction, ``int64 [n]``, or ``None``.
        ratings: explicit rating per interaction, ``float32 [n]``, or ``None``.
        item_table: one row per item in index order, with string columns from
            :data:`TEXT_FIELDS` (missing text is ``""``), or ``None`` when the source has none.
        name: data set name, for reports.
    """

    users: np.ndarray
    items: np.ndarray
    user_vocab: Vocabulary
    item_vocab: Vocabulary
    timestamps: np.ndarray | None = None
    ratings: np.ndarray | None = None
    item_table: pd.DataFrame | None = None
    name: str = "data"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.users = np.asarray(self.users, dtype=np.int64)
        self.items = np.asarray(self.items, dtype=np.int64)
        n = len(self.users)
        if len(self.items) != n:
            raise ValueError(f"users ({n}) and items ({len(self.items)}) differ in length")
        for name in ("timestamps", "ratings"):
            arr = getattr(self, name)
            if arr is not None:
                arr = np.asarray(arr, dtype=np.int64 if name == "timestamps" else np.float32)
                if len(arr) != n:
                    raise ValueError(f"{name} has {len(arr)} rows, interactions have {n}")
                setattr(self, name, arr)
        if n:
            if self.users.min() < 0 or self.users.max() >= len(self.user_vocab):
                raise ValueError("user index out of the user vocabulary's range")
            if self.items.min() < 0 or self.items.max() >= len(self.item_vocab):
                raise ValueError("item index out of the item vocabulary's range")
        if self.item_table is not None and len(self.item_table) != len(self.item_vocab):
            raise ValueError(
                f"item table has {len(self.item_table)} rows, vocabulary {len(self.item_vocab)}"
            )

    # -- sizes -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_users(self) -> int:
        return len(self.user_vocab)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    @property
    def has_timestamps(self) -> bool:
        return self.timestamps is not None

    def __repr__(self) -> str:
        return (
            f"Interactions({self.name!r}: {self.n_users} users, {self.n_items} items, "
            f"{len(self)} interactions, timestamps={self.has_timestamps}, "
            f"text={self.item_table is not None})"
        )

    # -- other libraries ---------------------------------------------------------------
    @classmethod
    def from_pandas(cls, interactions: pd.DataFrame, items: pd.DataFrame | None = None, *,
                    user_col: str = "user_id", item_col: str = "item_id",
                    time_col: str | None = None, rating_col: str | None = None,
                    item_id_col: str | None = None, text_cols: dict | None = None,
                    time_unit: str = "s", name: str = "pandas", options=None) -> "Interactions":
        """Interactions from DataFrames, parsed and cleaned exactly as the ``csv`` loader
        parses and cleans files with the same rows; see
        :func:`hybridrec.data.frames.load_frames` for the arguments."""
        from .frames import load_frames  # frames builds on this module

        return load_frames(interactions, items, user_col=user_col, item_col=item_col,
                           time_col=time_col, rating_col=rating_col, item_id_col=item_id_col,
                           text_cols=text_cols, time_unit=time_unit, name=name, options=options)

    def to_pyg(self):
        """A ``torch_geometric.data.HeteroData`` user-item graph; see
        :func:`hybridrec.data.pyg.to_pyg`."""
        from .pyg import to_pyg

        return to_pyg(self)

    @classmethod
    def from_pyg(cls, data, *, name: str | None = None,
                 edge_type: tuple[str, str, str] = ("user", "interacts", "item")) -> "Interactions":
        """The inverse of :meth:`to_pyg`; see :func:`hybridrec.data.pyg.from_pyg`."""
        from .pyg import from_pyg

        return from_pyg(data, name=name, edge_type=edge_type)

    # -- views -------------------------------------------------------------------------
    def subset(self, mask_or_index: np.ndarray, name: str | None = None) -> "Interactions":
        """The rows selected by a boolean mask or index array; vocabularies are shared."""
        sel = np.asarray(mask_or_index)

        def take(a):
            return None if a is None else a[sel]

        return Interactions(
            users=self.users[sel],
            items=self.items[sel],
            user_vocab=self.user_vocab,
            item_vocab=self.item_vocab,
            timestamps=take(self.timestamps),
            ratings=take(self.ratings),
            item_table=self.item_table,
            name=name or self.name,
            meta={k: (take(np.asarray(v)) if k in ROW_META_KEYS and v is not None else v)
                  for k, v in self.meta.items()},
        )

    def to_csr(self) -> sp.csr_matrix:
        """Binary users x items matrix (duplicates collapse to 1), ``float32``, CSR."""
        m = sp.csr_matrix(
            (np.ones(len(self), dtype=np.float32), (self.users, self.items)),
            shape=(self.n_users, self.n_items),
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def item_counts(self) -> np.ndarray:
        """Number of interactions of each item, ``int64 [n_items]``."""
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)

    def user_counts(self) -> np.ndarray:
        """Number of interactions of each user, ``int64 [n_users]``."""
        return np.bincount(self.users, minlength=self.n_users).astype(np.int64)

    def to_frame(self) -> pd.DataFrame:
        """Rows with external ids, for inspection and export."""
        df = pd.DataFrame(
            {"user_id": self.user_vocab.lookup(self.users), "item_id": self.item_vocab.lookup(self.items)}
        )
        if self.timestamps is not None:
            df["timestamp"] = self.timestamps
        if self.ratings is not None:
            df["rating"] = self.ratings
        return df

    def item_text(self, index: int) -> dict[str, str]:
        """Text fields of one item (empty dict when the data set has no item table)."""
        if self.item_table is None:
            return {}
        row = self.item_table.iloc[int(index)]
        return {c: str(row[c]) for c in self.item_table.columns if c in TEXT_FIELDS}


@dataclass
class Split:
    """A train / (validation) / test partition of one data set over shared vocabularies.

    Attributes:
        train: interactions a model may learn from.
        test: held-out interactions the model is scored on.
        valid: optional held-out interactions for early stopping and tuning.
        kind: how the split was made (``"temporal"``, ``"leave_last_out"``, ``"given"``,
            ``"random"``, later ``"cold_item"``).
        cold_items: item indices held out entirely from training (cold-item splits), or
            ``None``.
        info: counts and settings of the split, for the run log and reports.
    """

    train: Interactions
    test: Interactions
    valid: Interactions | None = None
    kind: str = "given"
    cold_items: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def summary(self) -> dict:
        out = {
            "kind": self.kind,
            "users": self.n_users,
            "items": self.n_items,
            "train": len(self.train),
            "test": len(self.test),
            "valid": 0 if self.valid is None else len(self.valid),
        }
        if self.cold_items is not None:
            out["cold_items"] = int(len(self.cold_items))
        out.update(self.info)
        return out
