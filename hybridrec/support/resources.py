"""Files that ship with hybridrec: prompt templates and example configs.

In the repository they live in the top-level ``prompts/`` and ``configs/`` folders; the
wheel installs them as ``hybridrec/prompts`` and ``hybridrec/configs`` (package data, see
``pyproject.toml``), so a pip-installed hybridrec finds them from any working directory.
They are found through :mod:`importlib.resources`, in this order:

1. a user folder: ``$HYBRIDREC_PROMPTS`` / ``$HYBRIDREC_CONFIGS`` (or an explicit folder
   argument where a function takes one), which overrides the shipped files;
2. the installed package data (``importlib.resources.files("hybridrec") / "prompts"``);
3. the checkout beside the package (an editable install or a source tree on ``sys.path``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: kind of shipped folder -> environment variable naming a user folder that overrides it.
KINDS = {"prompts": "HYBRIDREC_PROMPTS", "configs": "HYBRIDREC_CONFIGS"}


def shipped_dir(kind: str) -> Path:
    """The folder of shipped ``kind`` files (``"prompts"`` or ``"configs"``).

    Raises:
        ValueError: an unknown kind.
        FileNotFoundError: neither the installed package data nor a checkout has the folder.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown resource kind {kind!r}; kinds: {', '.join(KINDS)}")
    override = os.environ.get(KINDS[kind])
    if override:
        return Path(override).expanduser()
    installed = Path(str(resources.files("hybridrec") / kind))
    if installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parents[2] / kind
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"hybridrec's {kind}/ folder is missing: looked in {installed} (installed package) "
                            f"and {checkout} (checkout); reinstall hybridrec or set ${KINDS[kind]} to a folder")


def list_configs() -> list[str]:
    """Names of the shipped configs (``gowalla``, ``ml-100k``, ...), for help texts and errors."""
    try:
        folder = shipped_dir("configs")
    except FileNotFoundError:
        return []
    return sorted(p.stem for p in folder.glob("*.yaml"))


def find_config(name: str | os.PathLike) -> Path:
    """A config file: ``name`` itself when it is a file, else a shipped config of that name.

    ``configs/gowalla.yaml``, ``gowalla.yaml`` and ``gowalla`` all find the shipped
    ``gowalla.yaml`` when no such file exists in the working directory, so the README's
    commands work outside the checkout.

    Raises:
        FileNotFoundError: no such file and no shipped config of that name (lists them).
    """
    path = Path(name).expanduser()
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name[:-4] if path.name.endswith(".yml") else path.name
    relative_to_configs = len(path.parts) == 1 or (len(path.parts) == 2 and path.parts[0] == "configs")
    if relative_to_configs and stem:
        try:
            shipped = shipped_dir("configs") / f"{stem}.yaml"
        except FileNotFoundError:
            shipped = None
        if shipped is not None and shipped.is_file():
            return shipped
    raise FileNotFoundError(f"config file {name} not found (and no shipped config {stem!r}; shipped configs: "
                            f"{', '.join(list_configs()) or 'none'})")
