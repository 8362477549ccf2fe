"""The one text-table formatter: every table hybridrec prints goes through :func:`render_table`."""

from __future__ import annotations

import math


def render_table(header: list[str], rows: list[list[str]], *, first_left: bool = False, rule: bool = True,
                 title: str | None = None) -> str:
    """Fixed-width text table of already formatted cells.

    Args:
        header: column names.
        rows: one list of cell strings per row, as long as ``header``.
        first_left: left-align the first column (row labels); every other column, and the
            first by default, is right-aligned.
        rule: a line of dashes under the header.
        title: a line above the table.
    """
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if first_left and i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    out = [] if title is None else [title]
    out.append(line(header))
    if rule:
        out.append("-" * len(out[-1]))
    out += [line(r) for r in rows]
    return "\n".join(out)


def fmt_value(v, digits: int = 4, missing: str = "", nan: str = "nan") -> str:
    """A metric cell: floats with ``digits`` decimals, None as ``missing``, NaN as ``nan``."""
    if v is None:
        return missing
    if isinstance(v, float) and math.isnan(v):
        return nan
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def fmt_mean_std(mean: float, std: float, digits: int = 4) -> str:
    """``mean+-std``; the mean alone when the spread is undefined (NaN, one seed)."""
    return f"{mean:.{digits}f}" if std != std else f"{mean:.{digits}f}+-{std:.{digits}f}"


def format_table(metrics: dict[str, dict[str, float]], n_users: dict[str, int] | None = None,
                 digits: int = 4) -> str:
    """One row per group, one column per metric key (in order of first appearance).

    Args:
        metrics: ``{group: {key: value}}``.
        n_users: optional ``{group: users}``, shown as a ``users`` column.
        digits: decimals shown; missing and NaN values show as ``-``.

    Example::

        group  users  recall@10  recall@20
        all      943     0.1234     0.2345
    """
    keys: list[str] = []
    for row in metrics.values():
        keys += [k for k in row if k not in keys]
    header = ["group"] + (["users"] if n_users is not None else []) + keys
    rows = [[g] + ([str(n_users.get(g, 0))] if n_users is not None else [])
            + [fmt_value(row.get(k), digits, missing="-", nan="-") for k in keys] for g, row in metrics.items()]
    return render_table(header, rows, first_left=True, rule=False)
