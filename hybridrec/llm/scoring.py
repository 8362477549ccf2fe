r"""Log-likelihood of continuations after a shared prompt, with the prompt computed once.

For a prompt :math:`x_{1..P}` and a continuation :math:`y_{1..L}` (token ids),

.. math:: \log p(y \mid x) = \sum_{j=1}^{L} \log p(y_j \mid x, y_{<j})

:func:`continuation_logprobs` runs the prompt through the model once, keeps its key/value
cache, and runs all continuations as one right-padded batch on top of copies of that cache
(``batch_size`` at a time). Right padding needs no attention mask: a causal model never
lets a real token see the pads after it. The log-probability of :math:`y_1` comes from
the prompt's last position; :math:`y_{j>1}` from the batch's position :math:`j-1`.
:func:`continuation_logprobs_naive` runs every full sequence separately; it is the
reference the cached path is tested against.
"""

from __future__ import annotations

import copy
import inspect

import torch

Tensor = torch.Tensor


def _forward_kwargs(model) -> tuple[str, str | None]:
    """(name of the cache argument, name of the "last logits only" argument or None)."""
    params = inspect.signature(model.forward).parameters
    cache = "cache" if "cache" in params else "past_key_values"
    keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    return cache, keep


def _cache_of(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _pad(continuations: list[list[int]], device) -> tuple[Tensor, Tensor]:
    """Right-padded ``[n, L]`` ids (pad 0) and their bool mask."""
    lens = torch.tensor([len(c) for c in continuations])
    if (lens < 1).any():
        raise ValueError("every continuation needs at least one token")
    ids = torch.zeros(len(continuations), int(lens.max()), dtype=torch.long)
    mask = torch.arange(ids.shape[1])[None, :] < lens[:, None]
    ids[mask] = torch.tensor([t for c in continuations for t in c], dtype=torch.long)
    return ids.to(device), mask.to(device)


@torch.no_grad()
def continuation_logprobs(model, prefix: list[int], continuations: list[list[int]],
                          batch_size: int = 32) -> tuple[Tensor, Tensor]:
    """Summed log-probability of each continuation given ``prefix``, prompt computed once.

    Args:
        model: a Hugging Face causal LM (``model(input_ids, cache=..., use_cache=True)``).
        prefix: prompt token ids (at least one).
        continuations: token ids of each continuation (each at least one).
        batch_size: continuations per forward pass (each holds a copy of the prompt's cache).

    Returns:
        ``(logprob float64 [n], n_tokens long [n])`` on the CPU.
    """
    if not prefix:
        raise ValueError("the prompt has no tokens")
    device = next(model.parameters()).device
    cache_kw, keep_kw = _forward_kwargs(model)
    extra = {keep_kw: 1} if keep_kw else {}
    out = model(input_ids=torch.tensor([prefix], device=device), use_cache=True, **extra)
    cache = _cache_of(out)
    first = out.logits[0, -1].float().log_softmax(-1)  # predicts each continuation's first token
    sums, lens = [], []
    for start in range(0, len(continuations), max(1, int(batch_size))):
        ids, mask = _pad(continuations[start:start + batch_size], device)
        c = copy.deepcopy(cache)
        c.batch_repeat_interleave(ids.shape[0])
        logits = model(input_ids=ids, use_cache=True, **{cache_kw: c}).logits[:, :-1].float()
        lp = torch.cat([first[ids[:, :1]], _token_logprobs(logits, ids[:, 1:])], dim=1)
        sums.append((lp * mask).sum(1).double().cpu())
        lens.append(mask.sum(1).cpu())
    return torch.cat(sums), torch.cat(lens)


def _token_logprobs(logits: Tensor, targets: Tensor) -> Tensor:
    """``log softmax(logits)[target]`` per position, without materialising the log-softmax."""
    return logits.gather(-1, targets[..., None])[..., 0] - logits.logsumexp(-1)


@torch.no_grad()
def continuation_logprobs_naive(model, prefix: list[int], continuations: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Reference for :func:`continuation_logprobs`: one full forward pass per continuation."""
    device = next(model.parameters()).device
    sums, lens = [], []
    for cont in continuations:
        ids = torch.tensor([list(prefix) + list(cont)], device=device)
        logits = model(input_ids=ids).logits[0].float()
        p = len(prefix)
        lp = _token_logprobs(logits[p - 1:p - 1 + len(cont)], ids[0, p:])
        sums.append(lp.sum().double().cpu())
        lens.append(len(cont))
    return torch.stack(sums), torch.tensor(lens)
