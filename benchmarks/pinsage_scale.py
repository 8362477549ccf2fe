"""PinSage on a generated web-scale graph: sampling throughput, step time and memory.

A bipartite graph of ``--users`` users, ``--items`` items and ``--interactions`` distinct
interactions is generated (users uniform, item popularity Zipf-like with exponent
``--zipf``, as in real catalogues), and PinSage's own code runs on it:

1. ``neighbour_table``: ``n_walks`` random walks with restart from every item, top-``T``
   importance neighbours. Reported as start items (targets) per second.
2. The rest of ``PinSage.prepare``: recent histories, the negative sampler, the module.
3. ``--steps`` training steps of ``--batch`` (query, positive, negative) triples through
   ``PinSage._train`` (one epoch of ``steps_per_epoch`` batches, no validation), after an
   untimed warm-up epoch of 2 steps: seconds per step (the epoch's shuffle of the training
   pairs included; building the pair arrays is reported apart as ``epoch_setup_s``), nodes
   of the largest sampled computation graph, and the process's peak resident memory during
   those steps (the kernel's high-water mark, reset before them).
4. Inference: final embeddings of ``--infer-items`` items, as items per second.

``--compare-scale F`` repeats everything on a graph ``F`` times smaller (same batch,
fan-out and layers), to show that the step's cost and memory do not grow with the graph.
Each graph runs in a fresh process. Id embeddings get sparse gradients and SparseAdam
(``--dense-ids`` for dense ones, whose Adam update touches every item at every step).

``--device cuda`` runs the model on a GPU (the graph is generated on the CPU, the walks,
neighbour tables, training and inference run on the GPU); the table then also reports the
GPU memory allocated before the steps and its peak growth during them
(``torch.cuda.max_memory_allocated``), and timings synchronise the GPU.

Results go to ``benchmarks/results/pinsage-scale/results.json`` and ``table.md``
(``--out`` for another folder).

Usage::

    python benchmarks/pinsage_scale.py                      # 1M users, 1M items, 20M interactions
    python benchmarks/pinsage_scale.py --compare-scale 10   # and 100K / 100K / 2M next to it
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hybridrec.config import TrainConfig  # noqa: E402
from hybridrec.data.interactions import Interactions  # noqa: E402
from hybridrec.data.vocab import Vocabulary  # noqa: E402
from hybridrec.models.pinsage import PinSage  # noqa: E402

GIB = 2 ** 30


def rss_gib(field: str = "VmRSS") -> float:
    """Resident memory of this process (``VmHWM``: its peak since the last reset), GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / GIB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def reset_peak() -> bool:
    """Reset the kernel's resident-memory high-water mark (Linux); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def generate(n_users: int, n_items: int, n_inter: int, zipf: float, seed: int) -> Interactions:
    """Distinct (user, item) pairs: users uniform, item ``r`` drawn with weight ``(r + 1)^-zipf``."""
    rng = np.random.default_rng(seed)
    p = (np.arange(1, n_items + 1, dtype=np.float64)) ** -zipf
    cdf = np.cumsum(p / p.sum())
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_inter:
        m = int((n_inter - len(keys)) * 1.1) + 1000
        u = rng.integers(0, n_users, m)
        i = np.minimum(np.searchsorted(cdf, rng.random(m)), n_items - 1)
        keys = np.unique(np.concatenate([keys, u * n_items + i]))
    keys = rng.permutation(keys)[:n_inter]
    users, items = keys // n_items, keys % n_items
    return Interactions(users=users, items=items, user_vocab=Vocabulary(range(n_users), "user"),
                        item_vocab=Vocabulary(range(n_items), "item"), name="generated")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def run_scale(n_users: int, n_items: int, n_inter: int, args) -> dict:
    out: dict = {"users": n_users, "items": n_items, "interactions": n_inter}
    cuda = args.device.startswith("cuda")
    t = time.perf_counter()
    data = generate(n_users, n_items, n_inter, args.zipf, args.seed)
    out["generate_s"] = time.perf_counter() - t
    out["rss_after_data_gib"] = rss_gib()
    train_cfg = TrainConfig(epochs=1, batch_size=args.batch, lr=0.001, l2=0.0, eval_every=0,
                            progress=not args.quiet)
    content = None
    if args.content_dim:  # stand-in content vectors: the benchmark measures cost, not accuracy
        content = torch.randn(n_items, args.content_dim, generator=torch.Generator().manual_seed(args.seed))
    model = PinSage(dim=args.dim, n_layers=args.layers, fan_out=args.fan_out, n_walks=args.walks,
                    walk_length=args.walk_length, user_history=args.history, easy_epochs=10 ** 6,
                    steps_per_epoch=args.steps, use_content=content is not None, sparse_ids=not args.dense_ids,
                    seed=args.seed, train=train_cfg, device=args.device)

    t = time.perf_counter()
    gen = model.prepare(data, item_embeddings=content)
    sync(args.device)
    prepare_s = time.perf_counter() - t
    timing = {"walks_s": model.walk_seconds}
    out["walks_s"] = timing["walks_s"]
    out["walk_targets_per_s"] = n_items / timing["walks_s"]
    out["walk_steps_per_s"] = n_items * args.walks * args.walk_length / timing["walks_s"]
    out["prepare_other_s"] = prepare_s - timing["walks_s"]
    out["params"] = sum(p.numel() for p in model.module.parameters())
    out["rss_after_prepare_gib"] = rss_gib()

    # warm-up (untimed): the first steps pay one-time costs (CUDA kernels and cuBLAS on a
    # GPU, allocator growth), which would otherwise be spread over the timed steps
    steps, model.steps_per_epoch = model.steps_per_epoch, 2
    model._train(data, None, gen)
    model.steps_per_epoch = steps
    gc.collect()
    out["peak_reset"] = reset_peak()
    base = rss_gib()
    if cuda:
        torch.cuda.reset_peak_memory_stats(args.device)
        gpu_base = torch.cuda.memory_allocated(args.device)
    sync(args.device)
    t = time.perf_counter()
    if args.profile:  # operator table of the training steps (and the epoch's set-up before them)
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=acts) as prof:
            hist = model._train(data, None, gen)
            sync(args.device)
        key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30)
        table += "\n" + prof.key_averages().table(sort_by=key, row_limit=15) if cuda else ""
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"profile-{n_items}.txt").write_text(table)
    else:
        hist = model._train(data, None, gen)
    sync(args.device)
    train_s = time.perf_counter() - t
    if cuda:
        out["gpu_allocated_before_steps_gib"] = gpu_base / GIB
        out["gpu_peak_growth_in_steps_gib"] = (torch.cuda.max_memory_allocated(args.device) - gpu_base) / GIB
    row = hist.rows[0]
    out["steps"] = args.steps
    out["batch_triples"] = args.batch
    # the epoch's clock starts after the training pairs are built and before their shuffle
    out["epoch_setup_s"] = train_s - row["seconds"]
    out["step_s"] = row["seconds"] / args.steps
    out["max_nodes_per_step"] = row["max_nodes"]
    out["node_bound"] = args.batch * 3 * sum(args.fan_out ** k for k in range(args.layers + 1))
    out["rss_before_steps_gib"] = base
    out["peak_rss_during_steps_gib"] = rss_gib("VmHWM")
    out["step_memory_gib"] = out["peak_rss_during_steps_gib"] - base
    # allocated once per fit, not per step: Adam's two moments (SparseAdam's are dense too)
    # and the epoch's training pairs with their shuffled order (three int64 per interaction)
    out["optimizer_state_gib"] = 2 * out["params"] * 4 / GIB
    out["pair_arrays_gib"] = 3 * 8 * n_inter / GIB

    items = torch.randperm(n_items, generator=torch.Generator().manual_seed(args.seed))[:args.infer_items]
    model.module.eval()
    sync(args.device)
    t = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(items), 1024):
            model._embed(items[s:s + 1024])
    sync(args.device)
    out["infer_items_per_s"] = len(items) / (time.perf_counter() - t)
    return out


def render(results: dict) -> str:
    """The markdown table of a ``results.json``; triples/s is the batch over the step time."""
    machine, rows = results["machine"], results["runs"]
    lines = [f"{machine['device']}: {machine.get('gpu') or machine['cpu']}, {machine['cores']} cores, "
             f"torch {machine['torch']}", "",
             "| graph (users / items / interactions) | walks: targets/s | prepare other s | step s | triples/s "
             "| nodes/step (bound) | RSS before steps GiB "
             "| RSS growth in the steps GiB (sizes of optimizer state + pair arrays, made once per fit) "
             "| infer items/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['users']:,} / {r['items']:,} / {r['interactions']:,} | {r['walk_targets_per_s']:,.0f} "
                     f"| {r['prepare_other_s']:.1f} | {r['step_s']:.3f} | {r['batch_triples'] / r['step_s']:,.0f} "
                     f"| {r['max_nodes_per_step']:,} ({r['node_bound']:,}) | {r['rss_before_steps_gib']:.2f} "
                     f"| {r['step_memory_gib']:.2f} ({r['optimizer_state_gib']:.2f} + {r['pair_arrays_gib']:.2f}) "
                     f"| {r['infer_items_per_s']:,.0f} |")
    if "gpu" in machine:
        lines += ["", "GPU memory (GiB): allocated before the steps, peak growth during them", "",
                  "| graph | allocated before steps | peak growth in steps |", "|---|---|---|"]
        lines += [f"| {r['users']:,} / {r['items']:,} / {r['interactions']:,} | "
                  f"{r['gpu_allocated_before_steps_gib']:.2f} | {r['gpu_peak_growth_in_steps_gib']:.2f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--interactions", type=int, default=20_000_000)
    ap.add_argument("--zipf", type=float, default=0.8)
    ap.add_argument("--compare-scale", type=int, default=0, help="also run a graph this many times smaller")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=512, help="(query, positive, negative) triples per step")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--fan-out", type=int, default=10)
    ap.add_argument("--walks", type=int, default=50)
    ap.add_argument("--walk-length", type=int, default=4)
    ap.add_argument("--history", type=int, default=50)
    ap.add_argument("--content-dim", type=int, default=64, help="0: id embeddings only")
    ap.add_argument("--dense-ids", action="store_true",
                    help="dense id-embedding gradients and Adam (default: sparse rows and SparseAdam)")
    ap.add_argument("--infer-items", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--profile", action="store_true",
                    help="write torch.profiler's operator tables of the steps to OUT/profile-<items>.txt")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "pinsage-scale"))
    ap.add_argument("--render", metavar="RESULTS_JSON",
                    help="only rewrite table.md beside an existing results.json (no measuring)")
    args = ap.parse_args()
    if args.render:
        src = Path(args.render)
        (src.parent / "table.md").write_text(table := render(json.loads(src.read_text())))
        print(table)
        return

    scales = [(args.users, args.items, args.interactions)]
    if args.compare_scale > 1:
        f = args.compare_scale
        scales.insert(0, (args.users // f, args.items // f, args.interactions // f))
    rows = []
    for scale in scales:
        print(f"graph {scale[0]:,} users x {scale[1]:,} items, {scale[2]:,} interactions", flush=True)
        with multiprocessing.get_context("spawn").Pool(1) as pool:  # a fresh process: its own memory peak
            rows.append(pool.apply(run_scale, (*scale, args)))
        print(json.dumps(rows[-1], indent=1), flush=True)

    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device}
    if args.device.startswith("cuda"):
        machine["gpu"] = torch.cuda.get_device_name(args.device)
    settings = {k: getattr(args, k) for k in ("batch", "dim", "layers", "fan_out", "walks", "walk_length",
                                              "history", "content_dim", "zipf", "seed", "steps", "dense_ids",
                                              "device")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"machine": machine, "settings": settings, "runs": rows}, indent=2))
    table = render({"machine": machine, "runs": rows})
    (out / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
