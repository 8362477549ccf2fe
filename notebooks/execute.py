"""Execute the notebooks top to bottom and refresh, or check, their committed outputs.

    python notebooks/execute.py            # re-run every notebook, write outputs in place
    python notebooks/execute.py --check    # re-run into memory, fail if an output changed
    python notebooks/execute.py 01_quickstart.ipynb

The notebooks are seeded and run on the CPU in one thread, so their text outputs are
reproducible to the last digit; cells
tagged ``timing`` (seconds, progress) are run but not compared. Images are not compared
byte for byte (they are drawn from the tables that are). ``tests/test_notebooks.py`` runs
the check for every notebook.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOKS = sorted(p.name for p in HERE.glob("[0-9][0-9]_*.ipynb"))
SKIP_TAG = "timing"
#: Parts of a text output that legitimately change between runs.
VOLATILE = [
    (re.compile(r"\d{8}-\d{6}(-\d+)?"), "<timestamp>"),  # run folder names
    (re.compile(r"(/tmp|/var/folders)[^\s'\"]*"), "<tmpdir>"),
    (re.compile(r"0x[0-9a-f]{6,}"), "<address>"),
]


def execute(path: Path, timeout: int = 1200, kernel: str = "python3"):
    """Run notebook ``path`` top to bottom in a fresh kernel, in its own folder; return it."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {
        "HYBRIDREC_NOTEBOOK_OUT": tempfile.mkdtemp(prefix="hybridrec-nb-"),  # the notebooks' run folders
        # one thread: floating-point sums, hence the printed digits, do not depend on the core count
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }
    shared = HERE.parent.parent / "shared" / "datasets"  # the checkout's data folder, as in tests/
    if not os.environ.get("HYBRIDREC_DATA") and shared.is_dir():
        env["HYBRIDREC_DATA"] = str(shared)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def text_outputs(nb) -> list[tuple[int, str]]:
    """``(cell index, normalised text)`` of every compared code cell."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or SKIP_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        parts = []
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                parts.append(o.get("text", ""))
            elif o.get("output_type") in ("execute_result", "display_data"):
                data = o.get("data", {})
                if "text/plain" in data and "image/png" not in data:
                    parts.append(data["text/plain"] if isinstance(data["text/plain"], str)
                                 else "".join(data["text/plain"]))
            elif o.get("output_type") == "error":
                parts.append(f"ERROR {o.get('ename')}: {o.get('evalue')}")
        text = "".join(parts)
        for pattern, repl in VOLATILE:
            text = pattern.sub(repl, text)
        out.append((i, text))
    return out


def differences(committed, fresh) -> list[str]:
    """Human-readable differences between two notebooks' compared outputs."""
    a, b = dict(text_outputs(committed)), dict(text_outputs(fresh))
    diffs = []
    for i in sorted(set(a) | set(b)):
        if a.get(i) != b.get(i):
            src = fresh.cells[i].source.splitlines()[0] if i < len(fresh.cells) else "?"
            diffs.append(f"cell {i} ({src!r}):\n--- committed\n{a.get(i)}\n--- now\n{b.get(i)}")
    return diffs


def main(argv=None) -> int:
    import nbformat

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=NOTEBOOKS)
    ap.add_argument("--check", action="store_true", help="do not write; fail if an output changed")
    args = ap.parse_args(argv)
    failed = 0
    for name in args.names:
        path = HERE / name
        fresh = execute(path)
        if args.check:
            diffs = differences(nbformat.read(path, as_version=4), fresh)
            failed += bool(diffs)
            print(f"{name}: " + ("outputs match" if not diffs else "STALE\n" + "\n".join(diffs)))
        else:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".ipynb", dir=HERE)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                nbformat.write(fresh, f)
            os.replace(tmp, path)
            print(f"{name}: executed, outputs written")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
