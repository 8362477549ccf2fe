"""Text tables and run-folder files for evaluation results."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .result import atomic_write_text

if TYPE_CHECKING:
    from .result import EvalResult


def format_table(
    metrics: dict[str, dict[str, float]], n_users: dict[str, int] | None = None, digits: int = 4
) -> str:
    """A fixed-width text table: one row per group, one column per metric key.

    Args:
        metrics: ``{group: {key: value}}``; columns follow the first appearance of each key.
        n_users: optional ``{group: users}``, shown as a ``users`` column.
        digits: decimals shown.

    Example::

        group  users  recall@10  recall@20
        all      943     0.1234     0.2345
    """
    keys: list[str] = []
    for row in metrics.values():
        keys += [k for k in row if k not in keys]
    header = ["group"] + (["users"] if n_users is not None else []) + keys
    lines = []
    for g, row in metrics.items():
        cells = [g] + ([str(n_users.get(g, 0))] if n_users is not None else [])
        for k in keys:
            v = row.get(k)
            cells.append("-" if v is None or math.isnan(v) else f"{v:.{digits}f}")
        lines.append(cells)
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]

    def fmt(cells):
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join([first] + rest).rstrip()

    return "\n".join([fmt(header)] + [fmt(r) for r in lines])


def save_results(
    result: "EvalResult", run_dir: str | os.PathLike, name: str = "metrics"
) -> dict[str, Path]:
    """Write ``<name>.json`` (full result) and ``<name>.csv`` (long layout) into ``run_dir``.

    Both files are written atomically (temporary file + rename).

    Returns:
        ``{"json": path, "csv": path}``.
    """
    run_dir = Path(run_dir)
    json_path = result.to_json(run_dir / f"{name}.json")
    buf = io.StringIO()
    result.to_frame("long").to_csv(buf, index=False)
    csv_path = atomic_write_text(run_dir / f"{name}.csv", buf.getvalue())
    return {"json": json_path, "csv": csv_path}
