r"""LoRA fine-tuning of the LLM ranker (the TALLRec / LlamaRec recipe), with ``peft``.

Each training example is a candidate list built from the training interactions
(:mod:`.finetune_data`), turned into token ids by the ranker's own
:meth:`~.ranker.LLMRanker.build_prompt`, so training sees exactly the text ``rank()``
scores. The loss of one example with target answer :math:`y` (e.g. ``[3] "Heat (1995)"``
and the end-of-turn token) after prompt :math:`x` is the mean token cross-entropy under
teacher forcing (prompt tokens carry no loss), plus, with ``listwise > 0``, a softmax
cross-entropy over the ``N`` candidates' answer scores :math:`s_c` (the ranker's
``normalize``: mean or summed answer log-likelihood):

.. math:: \ell = -\frac{1}{|y|}\sum_j \log p(y_j \mid x, y_{<j})
    \;-\; \lambda \log \frac{e^{s_{\mathrm{target}}}}{\sum_{c=1}^{N} e^{s_c}}

The listwise term runs every candidate's answer, ``N`` times the tokens of the plain loss.
Low-rank adapters (Hu et al., "LoRA", ICLR 2022) go on the attention and MLP projections
found in the model; only they are trained (AdamW, linear warm-up then linear decay).

Checkpoints (``out_dir/checkpoint/``, every ``checkpoint_every`` steps and at the end)
hold the adapter weights and AdamW state as safetensors plus ``state.json`` (step, losses,
config, a digest of the examples), written atomically; nothing is pickled. No random
state needs saving: the data order is drawn from ``(seed, epoch)`` and each step reseeds
torch from ``(seed, step)`` (LoRA dropout), so a resumed run ends with exactly the weights
of an uninterrupted one on the same device.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_folder, write_json
from .adapters import has_adapters
from .finetune_checkpoint import load_checkpoint, save_checkpoint
from .finetune_data import Example, build_examples, example_loss, examples_digest

log = logging.getLogger("hybridrec.llm")

#: Projection names LoRA targets by default, where the model has them (Llama, Mistral, Qwen,
#: Gemma, Phi-3: q/k/v/o and gate/up/down; GPT-2: c_attn, c_proj, c_fc; GPT-NeoX, Falcon,
#: OPT and Phi: the rest).
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
               "c_attn", "c_proj", "c_fc", "query_key_value", "dense", "dense_h_to_4h",
               "dense_4h_to_h", "qkv_proj", "gate_up_proj", "Wqkv", "out_proj", "fc1", "fc2")


@dataclass
class FineTuneConfig:
    """Settings of :func:`finetune`; round-trips through :meth:`to_dict` / :meth:`from_dict`.

    Attributes:
        steps: optimizer steps; ``None``: ``epochs`` passes over the examples.
        epochs: passes over the examples, used only when ``steps`` is ``None`` (> 0).
        lr: peak AdamW learning rate of the adapters (0 < lr <= 1; default 5e-4).
        weight_decay: AdamW weight decay (>= 0).
        batch_size: examples per forward pass (>= 1).
        grad_accum: forward passes per optimizer step (>= 1); a step sees
            ``batch_size * grad_accum`` examples.
        warmup: steps of linear warm-up from 0 to ``lr``; then linear decay to 0 (>= 0).
        max_grad_norm: gradient norm clip, ``None`` for none (> 0).
        lora_r: LoRA rank (>= 1). lora_alpha: LoRA scale numerator (> 0; scale alpha/r).
        lora_dropout: dropout on the adapters' input (0 <= p < 1).
        target_modules: module names to adapt; ``None``: those of :data:`PROJECTIONS` found.
        listwise: weight of the listwise softmax term (>= 0; 0 = answer cross-entropy only).
        n_candidates: candidates per training list, the target included (>= 2).
        negatives: where the ``n_candidates - 1`` negatives come from: ``"train"`` (default),
            items with a training interaction, or ``"all"`` items of the catalogue. With
            ``"all"``, an item no one chose in training (a cold item) could only ever be a
            negative, and the model would learn to rank exactly those items low.
        examples_per_user: last training items of each user used as targets (>= 1).
        max_train_users: users sampled for training, ``None`` for all (>= 1).
        seed: seeds the examples, the data order, the adapters' initialisation and dropout.
        checkpoint_every: steps between checkpoints (>= 1); one is also written at the end.
    """

    steps: int | None = None
    epochs: float = 1.0
    lr: float = 5e-4
    weight_decay: float = 0.0
    batch_size: int = 4
    grad_accum: int = 1
    warmup: int = 10
    max_grad_norm: float | None = 1.0
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None
    listwise: float = 0.0
    n_candidates: int = 20
    negatives: str = "train"
    examples_per_user: int = 4
    max_train_users: int | None = None
    seed: int = 0
    checkpoint_every: int = 50

    def __post_init__(self):
        def check(name, ok, rule):
            if not ok:
                raise ValueError(f"FineTuneConfig.{name} must be {rule}, got {getattr(self, name)!r}")
        check("steps", self.steps is None or int(self.steps) >= 1, ">= 1 or None")
        check("epochs", float(self.epochs) > 0, "> 0")
        check("lr", 0 < float(self.lr) <= 1, "in (0, 1]")
        check("weight_decay", float(self.weight_decay) >= 0, ">= 0")
        for name in ("batch_size", "grad_accum", "lora_r", "n_candidates", "examples_per_user",
                     "checkpoint_every"):
            check(name, int(getattr(self, name)) >= (2 if name == "n_candidates" else 1),
                  ">= 2" if name == "n_candidates" else ">= 1")
        check("warmup", int(self.warmup) >= 0, ">= 0")
        check("max_grad_norm", self.max_grad_norm is None or float(self.max_grad_norm) > 0, "> 0 or None")
        check("lora_alpha", float(self.lora_alpha) > 0, "> 0")
        check("lora_dropout", 0 <= float(self.lora_dropout) < 1, "in [0, 1)")
        check("listwise", float(self.listwise) >= 0, ">= 0")
        check("negatives", self.negatives in ("train", "all"), "'train' or 'all'")
        check("max_train_users", self.max_train_users is None or int(self.max_train_users) >= 1, ">= 1 or None")
        check("seed", int(self.seed) >= 0, ">= 0")
        if self.target_modules is not None:
            names = (self.target_modules,) if isinstance(self.target_modules, str) else tuple(self.target_modules)
            check("target_modules", len(names) > 0 and all(isinstance(n, str) and n for n in names),
                  "a non-empty list of module names or None")
            self.target_modules = names

    def to_dict(self) -> dict:
        d = asdict(self)
        d["target_modules"] = None if self.target_modules is None else list(self.target_modules)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FineTuneConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fine-tuning setting(s) {sorted(unknown)}; valid: "
                             f"{sorted(f.name for f in fields(cls))}")
        return cls(**d)


@dataclass
class FineTuneResult:
    """What :func:`finetune` did: where the adapters are, the loss per step and the cost."""

    adapter_dir: Path
    steps: int
    losses: list[float]
    resumed_from: int
    cost: dict = field(default_factory=dict)


def find_target_modules(model, wanted=None) -> list[str]:
    """Names (last component) of the linear layers LoRA adapts: ``wanted``, or those of
    :data:`PROJECTIONS` the model has.

    Raises:
        ValueError: none found (the message lists the model's linear layer names).
    """
    linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                     if n and (isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D")})
    found = [n for n in (wanted or PROJECTIONS) if n in linear]
    missing = sorted(set(wanted or ()) - set(found))
    if missing or not found:
        what = f"target_modules {missing}" if missing else "none of the usual projection names"
        raise ValueError(f"LoRA cannot adapt this model: {what} found among its linear layers "
                         f"{linear or '(none)'}; pass FineTuneConfig(target_modules=[...]) with some of them")
    return found


def _lr_at(cfg: FineTuneConfig, step: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return cfg.lr * max(0.0, (total - step) / max(1, total - cfg.warmup))


def step_batches(examples: list[Example], cfg: FineTuneConfig, step: int) -> list[list[Example]]:
    """The ``grad_accum`` micro-batches of optimizer step ``step``: passes over the examples
    in orders drawn from ``(seed, epoch)``, so a step's batch needs no replay of the ones before."""
    n, per_step = len(examples), cfg.batch_size * cfg.grad_accum
    ks = range(step * per_step, (step + 1) * per_step)
    orders = {e: np.random.default_rng([cfg.seed, 2, e]).permutation(n) for e in {k // n for k in ks}}
    picked = [examples[orders[k // n][k % n]] for k in ks]
    return [picked[i:i + cfg.batch_size] for i in range(0, per_step, cfg.batch_size)]


def _train_step(model, ranker, opt, params, cfg: FineTuneConfig, batches, lr: float, seed: int):
    """One optimizer step over ``batches``; returns (mean example loss, tokens run)."""
    torch.manual_seed(seed)  # LoRA dropout draws the same numbers in a resumed run
    for g in opt.param_groups:
        g["lr"] = lr
    per_step, loss_sum, tokens = sum(len(b) for b in batches), 0.0, 0
    for batch in batches:
        loss, n = example_loss(model, ranker, batch, cfg.listwise)
        (loss / per_step).backward()
        loss_sum, tokens = loss_sum + float(loss.detach()), tokens + n
    if cfg.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for _, p in params], cfg.max_grad_norm)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss_sum / per_step, tokens


def finetune(ranker, train, cfg: FineTuneConfig | None = None, out_dir=None, *, resume: bool = True,
             progress: bool | None = None) -> FineTuneResult:
    """Fine-tune ``ranker``'s model with LoRA on candidate lists from ``train``.

    Afterwards the ranker scores with the adapters, and :meth:`~.ranker.LLMRanker.save`
    keeps them. Writes ``out_dir/adapter/`` (peft ``save_pretrained``, safetensors; reload
    onto a fresh ranker with :func:`~.adapters.attach_adapter`),
    ``out_dir/finetune.json`` (cost, losses, config) and ``out_dir/checkpoint/``. If
    training stops with an error (or Ctrl-C), the adapters are taken off the model again,
    so the same ranker can resume.

    Args:
        ranker: an :class:`~.ranker.LLMRanker` (fitted on ``train`` or not yet fitted); its
            model trains on its device (``ranker.to("cuda")``) in its dtype, adapters in float32.
        train: training interactions.
        cfg: :class:`FineTuneConfig` (default settings when ``None``).
        out_dir: output folder (required).
        resume: continue from ``out_dir/checkpoint/`` when there is one.
        progress: progress bar; ``None``: the ranker's ``progress`` setting.

    Raises:
        ValueError: the model already carries adapters, no LoRA target is found, bad
            examples (:func:`~.finetune_data.build_examples`), or a checkpoint of other
            settings or examples.
    """
    from peft import LoraConfig, get_peft_model

    from ..support.progress import progress_bar

    cfg = cfg or FineTuneConfig()
    if out_dir is None:
        raise ValueError("finetune() needs out_dir, where adapters and checkpoints are written")
    out_dir, ckpt = Path(out_dir), Path(out_dir) / "checkpoint"
    examples = build_examples(ranker, train, cfg)
    model, _ = ranker.llm
    if has_adapters(model):
        raise ValueError("the ranker's model already carries LoRA adapters: fine-tune a ranker with a fresh model")
    targets = find_target_modules(model, cfg.target_modules)
    total = cfg.steps or max(1, math.ceil(cfg.epochs * len(examples) / (cfg.batch_size * cfg.grad_accum)))
    digest, device = examples_digest(examples), next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)  # the adapters' initialisation
        peft_model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, bias="none",
                                                      lora_dropout=cfg.lora_dropout, target_modules=targets))
        params = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
        opt = torch.optim.AdamW([p for _, p in params], lr=cfg.lr, weight_decay=cfg.weight_decay)
        bar = None
        try:
            state = (load_checkpoint(ckpt, params, opt, cfg, digest) if resume else None) or \
                {"step": 0, "losses": [], "tokens": 0, "seconds": 0.0}
            start = state["step"]
            log.info("fine-tuning %s on %d examples: steps %d to %d, %d examples a step, LoRA r=%d on %s "
                     "(%d parameters)%s", ranker.model_name or type(model).__name__, len(examples), start + 1,
                     total, cfg.batch_size * cfg.grad_accum, cfg.lora_r, ",".join(targets),
                     sum(p.numel() for _, p in params), f", resumed from {ckpt}" if start else "")
            peft_model.train()
            clock = time.perf_counter()
            bar = progress_bar(total=total, initial=start, desc="llm finetune", unit="step",
                               enabled=ranker.progress if progress is None else progress)
            for step in range(start, total):
                # `model` now carries the LoRA layers; called directly it keeps its own forward
                # signature (logits_to_keep), which PeftModel's (*args, **kwargs) hides
                loss, tokens = _train_step(model, ranker, opt, params, cfg, step_batches(examples, cfg, step),
                                           _lr_at(cfg, step, total), cfg.seed * 1_000_003 + step)
                state["losses"].append(loss)
                state["tokens"] += tokens
                state["step"] = step + 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")
                if state["step"] % cfg.checkpoint_every == 0 or state["step"] == total:
                    state["seconds"] += time.perf_counter() - clock
                    clock = time.perf_counter()
                    save_checkpoint(ckpt, params, opt, cfg, digest, state)
        except BaseException:
            peft_model.unload()  # the ranker keeps its plain model; the checkpoint keeps the progress
            model.eval()
            raise
        finally:
            if bar is not None:
                bar.close()
    peft_model.eval()
    ranker.use_adapter(peft_model)  # its settings record the adapters; a saved ranker keeps them
    adapter_dir = out_dir / "adapter"
    # only adapter weights are trained: the base model's (tied) embeddings need no copy
    atomic_folder(adapter_dir, lambda tmp: peft_model.save_pretrained(str(tmp), safe_serialization=True,
                                                                      save_embedding_layers=False))
    cost = _cost(state, cfg, total, start, len(examples), model, ranker, targets, params)
    write_json(out_dir / "finetune.json", cost)
    log.info("fine-tuned in %.1f min (%d steps, %d tokens); adapters in %s", cost["wall_minutes"], total,
             state["tokens"], adapter_dir)
    return FineTuneResult(adapter_dir, total, list(state["losses"]), start, cost)


def _cost(state, cfg, total, start, n_examples, model, ranker, targets, params) -> dict:
    """What ``finetune.json`` records: the cost, the settings and the loss per step."""
    p = next(model.parameters())
    return {
        "wall_minutes": state["seconds"] / 60, "steps": total, "steps_this_run": total - start,
        "examples": n_examples, "examples_trained": total * cfg.batch_size * cfg.grad_accum,
        "tokens_trained": state["tokens"], "tokens_per_step": state["tokens"] / max(1, total),
        "seconds_per_step": state["seconds"] / max(1, total), "device": str(p.device),
        "dtype": str(p.dtype).replace("torch.", ""), "target_modules": targets,
        "trainable_parameters": sum(q.numel() for _, q in params), "model": ranker.model_name,
        "ranker": ranker.settings(), "config": cfg.to_dict(), "losses": state["losses"],
        "first_loss": state["losses"][0] if state["losses"] else None,
        "last_loss": state["losses"][-1] if state["losses"] else None,
    }
