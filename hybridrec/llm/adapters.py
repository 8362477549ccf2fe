"""LoRA adapters on the ranker's model: attaching saved ones, and carrying them in a saved ranker.

:func:`attach_adapter` loads the adapters :func:`~.finetune.finetune` wrote (peft's
``save_pretrained`` folder, safetensors only). A ranker that carries adapters records
their configuration in its settings, as ``adapter``: the peft type, the rank, scale,
dropout, target modules and bias, and any other field that differs from peft's defaults,
e.g. ``{"peft_type": "LORA", "r": 8, "lora_alpha": 16.0, "lora_dropout": 0.05,
"target_modules": ["down_proj", ...], "bias": "none"}``. The adapter weights are saved
in the ranker's own ``weights.safetensors`` as ``adapter.<peft name>``. So
:func:`hybridrec.models.load_model` gives back a ranker that attaches the same adapters
to the same base model when the model loads, and scores identically. Nothing is pickled.

peft is imported only when adapters are attached or restored.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import torch

#: Prefix of the adapter tensors in a saved ranker's ``weights.safetensors``.
ADAPTER_PREFIX = "adapter."
#: peft config fields that describe where an adapter came from, not what it is.
_PROVENANCE = {"peft_type", "peft_version", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping"}
#: fields always recorded, so a saved ranker does not depend on peft's defaults for its shapes
_CORE = ("r", "lora_alpha", "lora_dropout", "target_modules", "bias")


def has_adapters(model) -> bool:
    """Whether ``model`` carries peft adapter layers."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(m, BaseTunerLayer) for m in model.modules())


def _plain(value):
    """A JSON-able copy of a peft config value: sets as sorted lists, enums as their values."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def adapter_settings(config) -> dict:
    """The ranker's ``adapter`` setting for a peft config: its type, the LoRA fields of
    :data:`_CORE` it has, and every other field that differs from that config class's
    defaults (JSON-able)."""
    try:
        defaults = _plain(type(config)().to_dict())
    except (TypeError, ValueError):  # a config class with required fields: keep them all
        defaults = {}
    out = {"peft_type": _plain(config.peft_type)}
    for key, value in _plain(config.to_dict()).items():
        if key not in _PROVENANCE and (key in _CORE or key not in defaults or defaults[key] != value):
            out[key] = value
    return out


def config_from_settings(settings: dict):
    """The peft config an ``adapter`` setting describes (inverse of :func:`adapter_settings`),
    for inference.

    Raises:
        ValueError: no or an unknown ``peft_type``, or fields that config does not take.
    """
    from peft import PEFT_TYPE_TO_CONFIG_MAPPING

    fields = dict(settings)
    kind = fields.pop("peft_type", None)
    if kind not in PEFT_TYPE_TO_CONFIG_MAPPING:
        raise ValueError(f"adapter setting with unknown peft_type {kind!r}; known: "
                         f"{sorted(str(getattr(k, 'value', k)) for k in PEFT_TYPE_TO_CONFIG_MAPPING)}")
    try:
        return PEFT_TYPE_TO_CONFIG_MAPPING[kind](**fields, inference_mode=True)
    except TypeError as e:
        raise ValueError(f"adapter setting {settings} does not describe a {kind} adapter ({e})") from None


def adapter_tensors(peft_model) -> dict[str, torch.Tensor]:
    """The adapter weights of ``peft_model`` named for a saved ranker (``adapter.<name>``)."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    return {ADAPTER_PREFIX + k: v.detach().cpu() for k, v in state.items()}


def split_adapter_tensors(tensors: dict) -> tuple[dict, dict]:
    """``(adapter tensors without the prefix, the other tensors)`` of a saved ranker."""
    n = len(ADAPTER_PREFIX)
    adapter = {k[n:]: v for k, v in tensors.items() if k.startswith(ADAPTER_PREFIX)}
    return adapter, {k: v for k, v in tensors.items() if not k.startswith(ADAPTER_PREFIX)}


def restore_adapter(model, settings: dict, weights: dict[str, torch.Tensor]):
    """Attach the adapters ``settings`` describe to ``model`` and load ``weights`` into them
    (what :func:`adapter_tensors` saved, without the prefix). Returns the peft model, in eval mode.

    Raises:
        ValueError: the model already carries adapters, or the weights do not match the
            adapters the settings build on this model (another model or another config).
    """
    from peft import get_peft_model, set_peft_model_state_dict

    if has_adapters(model):
        raise ValueError("the ranker's model already carries LoRA adapters")
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        peft_model = get_peft_model(model, config_from_settings(settings))  # draws the (overwritten) init
    expected = set(adapter_tensors(peft_model))
    given = {ADAPTER_PREFIX + k for k in weights}
    if expected != given:
        peft_model.unload()
        missing, extra = sorted(expected - given), sorted(given - expected)
        raise ValueError(f"the saved adapter weights do not fit adapter {settings} on this model "
                         f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, unexpected "
                         f"{extra[:3]}{'...' if len(extra) > 3 else ''}); was the ranker saved with another model?")
    try:
        set_peft_model_state_dict(peft_model, weights)
    except RuntimeError as e:  # shapes that disagree
        peft_model.unload()
        raise ValueError(f"the saved adapter weights do not fit adapter {settings} on this model ({e})") from None
    peft_model.eval()
    return peft_model


def attach_adapter(ranker, adapter_dir) -> "object":
    """Load LoRA adapters saved by :func:`~.finetune.finetune` onto ``ranker``'s (fresh)
    model; the ranker then scores exactly as the fine-tuned one did, and a ranker saved
    afterwards carries the adapters. Returns the ranker.

    Raises:
        ValueError: no safetensors adapter in ``adapter_dir`` (pickled ``.bin`` adapters are
            refused), or the model already carries adapters.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file() or not (adapter_dir / "adapter_model.safetensors").is_file():
        raise ValueError(f"{adapter_dir} holds no LoRA adapter (adapter_config.json and "
                         "adapter_model.safetensors); pass the adapter/ folder finetune() wrote")
    model, _ = ranker.llm
    if has_adapters(model):
        raise ValueError("the ranker's model already carries LoRA adapters: attach to a ranker with a fresh model")
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    peft_model.eval()
    return ranker.use_adapter(peft_model)
