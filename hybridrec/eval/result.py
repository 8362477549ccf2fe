"""The outcome of one evaluation: metrics per group, with JSON, pandas and text views."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..io import write_text
from .table import format_table


@dataclass
class EvalResult:
    """Averaged metrics of one model on one split, per item group.

    Attributes:
        metrics: ``{group: {"recall@20": value, ...}}``, each value the mean over the
            group's users (users with at least one target item in the group).
        n_users: ``{group: number of users averaged}``.
        n_items: ``{group: number of items ranked}``.
        ks: the cut-offs.
        target: ``"test"`` or ``"valid"``.
        info: anything else worth keeping (timing, batch size).
    """

    metrics: dict[str, dict[str, float]]
    n_users: dict[str, int]
    n_items: dict[str, int] = field(default_factory=dict)
    ks: tuple[int, ...] = ()
    target: str = "test"
    info: dict = field(default_factory=dict)

    # -- access --------------------------------------------------------------------
    @property
    def groups(self) -> list[str]:
        return list(self.metrics)

    def __getitem__(self, group: str) -> dict[str, float]:
        try:
            return self.metrics[group]
        except KeyError:
            raise KeyError(f"no group {group!r}; groups: {self.groups}") from None

    def get(self, key: str, group: str = "all") -> float:
        """One value, e.g. ``result.get("recall@20")``; a clear ``KeyError`` if absent."""
        row = self[group]
        if key not in row:
            raise KeyError(f"no metric {key!r} in group {group!r}; metrics: {list(row)}")
        return row[key]

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-able dict; :meth:`from_dict` inverts it."""
        return {
            "target": self.target,
            "ks": list(self.ks),
            "metrics": {g: dict(m) for g, m in self.metrics.items()},
            "n_users": dict(self.n_users),
            "n_items": dict(self.n_items),
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "EvalResult":
        return cls(
            metrics={g: {k: float(v) for k, v in m.items()} for g, m in d["metrics"].items()},
            n_users={g: int(v) for g, v in d["n_users"].items()},
            n_items={g: int(v) for g, v in d.get("n_items", {}).items()},
            ks=tuple(int(k) for k in d.get("ks", ())),
            target=d.get("target", "test"),
            info=dict(d.get("info", {})),
        )

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` atomically; returns the path."""
        return write_text(path, json.dumps(self.to_dict(), indent=2, allow_nan=True) + "\n")

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "EvalResult":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_frame(self, layout: str = "wide"):
        """A pandas DataFrame.

        Args:
            layout: ``"wide"``: one row per group (index ``group``), a column per metric key
                plus ``n_users``; ``"long"``: one row per (group, metric, k) with columns
                ``group, metric, k, value, n_users`` (``k`` is ``<NA>`` for ``mrr``).
        """
        import pandas as pd

        if layout == "wide":
            df = pd.DataFrame.from_dict(self.metrics, orient="index")
            df.insert(0, "n_users", [self.n_users.get(g, 0) for g in df.index])
            df.index.name = "group"
            return df
        if layout == "long":
            rows = []
            for g, m in self.metrics.items():
                for key, value in m.items():
                    name, _, k = key.partition("@")
                    rows.append((g, name, int(k) if k else None, value, self.n_users.get(g, 0)))
            df = pd.DataFrame(rows, columns=["group", "metric", "k", "value", "n_users"])
            df["k"] = df["k"].astype("Int64")
            return df
        raise ValueError(f"layout must be 'wide' or 'long', got {layout!r}")

    # -- text ----------------------------------------------------------------------
    def table(self, digits: int = 4) -> str:
        """Fixed-width text table: a row per group, a column per metric key."""
        return format_table(self.metrics, self.n_users, digits=digits)

    def __str__(self) -> str:
        return f"EvalResult(target={self.target!r})\n{self.table()}"

    def __repr__(self) -> str:
        main = self.metrics.get("all") or next(iter(self.metrics.values()), {})
        shown = ", ".join(f"{k}={v:.4f}" for k, v in list(main.items())[:4] if not math.isnan(v))
        return f"EvalResult(target={self.target!r}, groups={self.groups}, {shown})"
