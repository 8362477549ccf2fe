"""Run-folder files for evaluation results."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..io import write_text
from .result import EvalResult


def save_results(
    result: EvalResult, run_dir: str | os.PathLike, name: str = "metrics"
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
    csv_path = write_text(run_dir / f"{name}.csv", buf.getvalue())
    return {"json": json_path, "csv": csv_path}
