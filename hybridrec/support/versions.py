"""What produced a result: package versions, Python, the device and the source commit,
written as ``versions.json`` into every run folder and saved model."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .. import __version__

#: distributions whose versions change results (looked up, never imported).
PACKAGES = ("torch", "numpy", "scipy", "pandas", "sentence-transformers", "transformers", "torch-geometric",
            "faiss-cpu", "safetensors", "accelerate")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def source_commit() -> str | None:
    """The git commit of the hybridrec source (``+dirty`` with uncommitted changes), or
    ``None`` for an installed wheel or when git is not available. Asked once per process:
    every saved model records it, and two git calls per save would add up in compare mode."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def describe_device(device: str | None) -> str | None:
    """``"cpu"``, or ``"cuda:0 (NVIDIA H200)"`` for a GPU torch can see."""
    if device is None or not str(device).startswith("cuda"):
        return None if device is None else str(device)
    try:
        import torch

        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    except Exception:  # noqa: BLE001 - a description, never a reason to fail a run
        return str(device)


def versions(device: str | None = None) -> dict:
    """hybridrec, Python, platform, key package versions, device and source commit."""
    return {
        "hybridrec": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "device": describe_device(device),
        "commit": source_commit(),
    }


def write_versions(folder: str | Path, device: str | None = None) -> Path:
    """Write :func:`versions` as ``folder/versions.json`` (atomically)."""
    from ..io import write_json

    return write_json(Path(folder) / "versions.json", versions(device))
