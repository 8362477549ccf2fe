"""Checkpoints of LoRA fine-tuning: safetensors and JSON, written atomically, never pickled.

A checkpoint folder holds ``adapter.safetensors`` (the trainable parameters by name),
``optimizer.safetensors`` (each AdamW state tensor as ``state.<param>.<key>``) and
``state.json`` (step, losses, tokens and seconds so far, the optimizer's param groups and
non-tensor state, the config, and a digest of the examples). The folder is built under a
temporary name and swapped in (:func:`hybridrec.io.atomic_folder`), so a crash leaves the
previous checkpoint whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..io import atomic_folder, save_tensors, write_json

#: Settings that may change between a checkpoint and its resumption.
_RESUMABLE = {"checkpoint_every"}


def save_checkpoint(folder: Path, params, opt: torch.optim.Optimizer, cfg, digest: str, state: dict) -> None:
    """Write the checkpoint of ``params`` (``[(name, tensor)]``), ``opt`` and ``state``."""
    sd = opt.state_dict()
    tensors, plain = {}, {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{key}"] = value
            else:
                plain[f"{idx}.{key}"] = value

    def fill(tmp: Path) -> None:
        save_tensors(tmp / "adapter.safetensors", {n: p for n, p in params})
        save_tensors(tmp / "optimizer.safetensors", tensors)
        write_json(tmp / "state.json", {**state, "config": cfg.to_dict(), "examples_sha256": digest,
                                        "param_groups": sd["param_groups"], "optimizer_plain": plain,
                                        "parameters": [n for n, _ in params]})

    atomic_folder(folder, fill)


def load_checkpoint(folder: Path, params, opt: torch.optim.Optimizer, cfg, digest: str) -> dict | None:
    """Restore ``params`` and ``opt`` from ``folder``; returns the saved state, or ``None``
    when there is no checkpoint.

    Raises:
        ValueError: the checkpoint was written with other settings, examples or parameters.
    """
    from safetensors.torch import load_file

    if not (folder / "state.json").is_file():
        return None
    meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    mine, theirs = cfg.to_dict(), meta["config"]
    changed = sorted(k for k in set(mine) | set(theirs) if k not in _RESUMABLE and mine.get(k) != theirs.get(k))
    if changed:
        raise ValueError(f"the checkpoint in {folder} was written with other settings "
                         f"({', '.join(f'{k}: {theirs.get(k)!r} there, {mine.get(k)!r} now' for k in changed)}); "
                         "pass resume=False or another out_dir to start over")
    if meta["examples_sha256"] != digest or meta["parameters"] != [n for n, _ in params]:
        raise ValueError(f"the checkpoint in {folder} was written for other training examples or another "
                         "model (other data, ranker settings or LoRA targets); pass resume=False or another out_dir")
    weights = load_file(str(folder / "adapter.safetensors"))
    with torch.no_grad():
        for name, p in params:
            p.copy_(weights[name])
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for key, value in meta["optimizer_plain"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return {k: meta[k] for k in ("step", "losses", "tokens", "seconds")}
