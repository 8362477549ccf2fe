"""Time and peak memory of loading a 2M-row interactions CSV: hybridrec against pandas.

Generates ``user_id,item_id,rating,timestamp`` rows (integer ids: 100k users, 50k items,
half-star ratings, unix times; seeded, so a few hundred repeated pairs) in a temporary
folder, then loads the file in a fresh subprocess per run, alternating:

- ``pandas``: ``pd.read_csv(path, engine="pyarrow")`` (a DataFrame, no cleaning);
- ``hybridrec``: ``load_dataset("csv", path, time_col="timestamp", rating_col="rating")``
  (parsing, checks, duplicate rule, vocabularies: a ready :class:`Interactions`);
- ``hybridrec-exact`` (once, ``--exact``): the same with the columnar fast path turned off,
  i.e. the line-tracking reader every file went through before.

Each child imports its libraries first, then measures the load alone: wall time, CPU time
and peak RSS growth (``VmHWM`` in ``/proc/self/status`` after minus before: the process's
own high-water mark, whereas ``ru_maxrss`` would also count the parent's from before exec).
Reports the median of ``--repeat`` runs and writes
``benchmarks/results/load-speed/results.json``.

Usage::

    python benchmarks/load_speed.py [--rows 2000000] [--repeat 5] [--exact]

The machine is shared with other jobs, so single timings vary by +-30%; the medians of
alternating runs are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "load-speed"

CHILD = r"""
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
import numpy, pandas, pyarrow.csv  # imports are not part of the measurement
import hybridrec.data
from hybridrec.data import load_dataset, tabular

def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    # VmHWM: this process's own peak RSS (ru_maxrss also counts the parent's before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return r.ru_utime + r.ru_stime, int(line.split()[1]) * 1024
    return r.ru_utime + r.ru_stime, r.ru_maxrss * 1024

if kind == "hybridrec-exact":
    tabular.read_columns = lambda *a, **k: None
cpu0, rss0 = usage()
t0 = time.perf_counter()
if kind == "pandas":
    rows = len(pandas.read_csv(path, engine="pyarrow"))
else:
    rows = len(load_dataset("csv", path, time_col="timestamp", rating_col="rating"))
wall = time.perf_counter() - t0
cpu1, rss1 = usage()
print(json.dumps({"kind": kind, "wall_s": wall, "cpu_s": cpu1 - cpu0,
                  "peak_rss_growth_bytes": rss1 - rss0, "rows": rows}))
"""


def write_file(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    users = rng.integers(1, 100_001, n)
    items = rng.integers(1, 50_001, n)
    ratings = rng.integers(1, 11, n) / 2
    times = rng.integers(800_000_000, 1_700_000_000, n)
    with open(path, "w") as f:
        f.write("user_id,item_id,rating,timestamp\n")
        step = 500_000
        for s in range(0, n, step):
            f.write("".join(f"{u},{i},{r:g},{t}\n" for u, i, r, t in zip(
                users[s:s + step].tolist(), items[s:s + step].tolist(),
                ratings[s:s + step].tolist(), times[s:s + step].tolist())))


def run_child(kind: str, path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    import pandas
    import pyarrow

    return {"cpu": cpu, "logical_cores": os.cpu_count(), "memory_gib": mem,
            "note": "a 2-core CPU machine shared with other jobs (no GPU used)",
            "load_average_at_start": os.getloadavg(), "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pandas.__version__,
            "pyarrow": pyarrow.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--exact", action="store_true",
                        help="also time the exact line-tracking reader once (about 10 s)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="hybridrec-load-speed-") as tmp:
        path = Path(tmp) / "interactions.csv"
        t = time.perf_counter()
        write_file(path, args.rows)
        size = path.stat().st_size
        print(f"{args.rows:,} rows, {size / 1e6:.1f} MB written in {time.perf_counter() - t:.1f} s")
        runs: dict[str, list[dict]] = {"pandas": [], "hybridrec": []}
        for _ in range(args.repeat):
            for kind in runs:
                runs[kind].append(run_child(kind, path))
        if args.exact:
            runs["hybridrec-exact"] = [run_child("hybridrec-exact", path)]
    summary = {}
    for kind, rs in runs.items():
        summary[kind] = {
            "wall_s_median": statistics.median(r["wall_s"] for r in rs),
            "wall_s_min": min(r["wall_s"] for r in rs),
            "cpu_s_median": statistics.median(r["cpu_s"] for r in rs),
            "peak_rss_growth_mb_median": statistics.median(r["peak_rss_growth_bytes"]
                                                           for r in rs) / 1e6,
            "peak_rss_growth_mb_max": max(r["peak_rss_growth_bytes"] for r in rs) / 1e6,
            "rows_loaded": rs[0]["rows"],
            "runs": len(rs),
        }
    pd_s, hr_s = summary["pandas"], summary["hybridrec"]
    ratios = {
        "time_hybridrec_over_pandas_median": hr_s["wall_s_median"] / pd_s["wall_s_median"],
        "time_hybridrec_over_pandas_min": hr_s["wall_s_min"] / pd_s["wall_s_min"],
        "cpu_hybridrec_over_pandas_median": hr_s["cpu_s_median"] / pd_s["cpu_s_median"],
        "peak_memory_hybridrec_over_file_size": hr_s["peak_rss_growth_mb_max"] * 1e6 / size,
        "peak_memory_pandas_over_file_size": pd_s["peak_rss_growth_mb_max"] * 1e6 / size,
    }
    print(f"\n{'loader':<17}{'wall median':>12}{'wall min':>10}{'cpu median':>12}"
          f"{'peak RSS growth (max)':>23}")
    for kind, s in summary.items():
        print(f"{kind:<17}{s['wall_s_median']:>10.2f} s{s['wall_s_min']:>8.2f} s"
              f"{s['cpu_s_median']:>10.2f} s{s['peak_rss_growth_mb_max']:>17.0f} MB"
              f" ({s['peak_rss_growth_mb_max'] * 1e6 / size:.1f}x file)")
    print("\n" + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    print(f"machine: {info['cpu']}, {info['logical_cores']} cores, "
          f"load {info['load_average_at_start']}")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"rows": args.rows, "file_bytes": size, "machine": info,
              "measured": "each load in a fresh subprocess after its imports; median of "
                          f"{args.repeat} alternating runs; peak memory is VmHWM growth (peak RSS)",
              "summary": summary, "ratios": ratios, "runs": runs}
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
