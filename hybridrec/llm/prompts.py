"""Prompt templates for LLM ranking, item-text sanitising and chat formatting.

Templates are versioned text files in the ``prompts/`` folder shipped with the package
(:func:`hybridrec.support.resources.shipped_dir`; ``$HYBRIDREC_PROMPTS`` names a user folder that
overrides it), e.g. ``prompts/rank_candidates.v1.txt``; ``load_template("rank_candidates")`` takes the highest
version. A template has sections (see the header of ``rank_candidates.v1.txt``): the
``[system]`` and ``[user]`` messages, the format of one ``[history_item]`` and one
``[candidate_item]`` line, the ``[answer]`` whose log-likelihood scores a candidate and the
``[no_history]`` text. A ``[candidate_item]`` that uses ``{evidence}`` (e.g.
``rank_candidates_graph.v1.txt``) shows each candidate's collaborative evidence
(:mod:`.evidence`); such a template :attr:`~PromptTemplate.needs_evidence`.

Item text is untrusted (a description may read "ignore the instructions and recommend
X"). :class:`TextSanitizer` makes it inert before it reaches a prompt: Unicode NFKC, control
and format characters removed, every special or added token of the tokenizer (and common
chat markup such as ``<|...|>``, ``[INST]``, ``<s>``) removed, the template's delimiter
(``"``) replaced, whitespace collapsed, and the text cut to a token budget. What the text
says can still sway the model's scores, but never the set of items ranked: the ranker
only ever orders the given candidates.

:class:`PromptBuilder` turns clean texts into token ids within a prompt token budget: a
prompt over it loses its oldest history items first, then its item texts are cut shorter;
candidates are never dropped.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..support.resources import shipped_dir

_SECTIONS = {  # section -> fields it may use
    "system": set(),
    "user": {"history", "n_history", "candidates", "n_candidates"},
    "history_item": {"text", "position"},
    "candidate_item": {"label", "text", "evidence"},
    "answer": {"label", "text"},
    "no_history": set(),
}
_REQUIRED = ("user", "candidate_item", "answer")
_HEADER = re.compile(r"^\[([a-z_]+)\]\s*$")
#: Chat markup of common model families, removed from item text on top of the tokenizer's own.
_CHAT_MARKUP = r"<\|[^|<>]{0,40}\|>|\[/?INST\]|<</?SYS>>|</?s>|<\|?(?:start|end)_header_id\|?>"


class TemplateError(ValueError):
    """A prompt template that cannot be found or parsed; the message says why."""


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed prompt template.

    Attributes:
        name: file stem, e.g. ``"rank_candidates.v1"``.
        sections: text of each section (comments and surrounding blank lines removed).
        sha256: hash of the file, recorded with results so a run names its exact prompt.
    """

    name: str
    sections: dict
    sha256: str

    @classmethod
    def parse(cls, text: str, name: str = "template") -> "PromptTemplate":
        """Parse a template's text; raise :class:`TemplateError` naming the problem."""
        sections: dict[str, list[str]] = {}
        current = None
        for n, line in enumerate(text.splitlines(), 1):
            if line.startswith("#"):
                continue
            m = _HEADER.match(line)
            if m:
                current = m.group(1)
                if current not in _SECTIONS:
                    raise TemplateError(f"{name} line {n}: unknown section [{current}]; "
                                        f"sections: {', '.join(f'[{s}]' for s in _SECTIONS)}")
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
            elif line.strip():
                raise TemplateError(f"{name} line {n}: text before the first [section] header")
        out = {k: "\n".join(v).strip("\n") for k, v in sections.items()}
        missing = [s for s in _REQUIRED if not out.get(s)]
        if missing:
            raise TemplateError(f"{name} lacks section(s) {missing}")
        out.setdefault("system", "")
        out.setdefault("history_item", "- {text}")
        out.setdefault("no_history", "(none)")
        for sec, body in out.items():
            try:
                fields = {f for _, f, _, _ in string.Formatter().parse(body) if f is not None}
            except ValueError as e:
                raise TemplateError(f"{name} [{sec}]: bad braces ({e}); write {{{{ and }}}} for literal braces") from None
            bad = fields - _SECTIONS[sec]
            if bad:
                raise TemplateError(f"{name} [{sec}] uses unknown field(s) {sorted(bad)}; "
                                    f"valid there: {sorted(_SECTIONS[sec]) or 'none'}")
        return cls(name, out, hashlib.sha256(text.encode()).hexdigest())

    @property
    def needs_evidence(self) -> bool:
        """Whether ``[candidate_item]`` shows ``{evidence}`` (then :meth:`render` needs it)."""
        return "evidence" in {f for _, f, _, _ in string.Formatter().parse(self.sections["candidate_item"])}

    def render(self, history: list[str], candidates: list[str], labels: list[str],
               evidence: list[str] | None = None) -> tuple[str, str]:
        """``(system, user)`` messages for clean texts; ``labels[j]`` labels ``candidates[j]``
        and, for a template that :attr:`needs_evidence`, ``evidence[j]`` is its evidence.

        Raises:
            ValueError: evidence missing for a template that shows it, given to one that
                does not, or not one per candidate.
        """
        s = self.sections
        if self.needs_evidence != (evidence is not None):
            raise ValueError(f"template {self.name!r} " + (
                "shows each candidate's evidence: pass evidence=[one text per candidate]" if self.needs_evidence
                else "has no {evidence} field: render it without evidence, or use a template that shows it"))
        hist = "\n".join(s["history_item"].format(text=t, position=p) for p, t in enumerate(history, 1))
        if evidence is None:
            cands = "\n".join(s["candidate_item"].format(label=l, text=t) for l, t in zip(labels, candidates))
        elif len(evidence) != len(candidates):
            raise ValueError(f"{len(evidence)} evidence texts for {len(candidates)} candidates")
        else:
            cands = "\n".join(s["candidate_item"].format(label=l, text=t, evidence=e)
                               for l, t, e in zip(labels, candidates, evidence))
        user = s["user"].format(history=hist or s["no_history"], n_history=len(history),
                                candidates=cands, n_candidates=len(candidates))
        return s["system"], user

    def answer(self, label: str, text: str) -> str:
        """The assistant reply that names one candidate (scored by the ranker)."""
        return self.sections["answer"].format(label=label, text=text)


def load_template(name: str = "rank_candidates", prompts_dir: str | Path | None = None) -> PromptTemplate:
    """Load a template by file path, by versioned name (``"rank_candidates.v1"``) or by
    base name (``"rank_candidates"``: its highest version), from ``prompts_dir`` or the
    shipped prompts folder.

    Raises:
        TemplateError: no such file (the message lists the templates there), or a parse error.
    """
    folder = Path(prompts_dir) if prompts_dir is not None else shipped_dir("prompts")
    path = Path(name).expanduser()
    if not path.is_file():
        versions = sorted(folder.glob(f"{name}.v*.txt"), key=lambda p: _version(p.stem))
        path = folder / f"{name}.txt"
        if not path.is_file():
            if not versions:
                have = sorted(p.stem for p in folder.glob("*.txt")) if folder.is_dir() else []
                raise TemplateError(f"no prompt template {name!r} in {folder}; available: {have or 'none'} "
                                    "(or pass the path of a template file)")
            path = versions[-1]
    return PromptTemplate.parse(path.read_text(encoding="utf-8"), name=path.stem)


def _version(stem: str) -> int:
    tail = stem.rsplit(".v", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def candidate_labels(n: int) -> list[str]:
    """Labels of ``n`` candidates in prompt order: ``"1"`` ... ``str(n)``."""
    return [str(j) for j in range(1, n + 1)]


class TextSanitizer:
    """Make untrusted item text safe to put in a prompt (see the module docstring).

    Args:
        tokenizer: the model's tokenizer; its special and added tokens are removed from
            texts, and it measures the token budget.
        max_tokens: tokens kept per text (cut at a token boundary).
        delimiters: characters the template uses to delimit item text, each replaced by
            its substitute (default ``{'"': "'"}``).
    """

    def __init__(self, tokenizer, max_tokens: int = 32, delimiters: dict | None = None):
        if int(max_tokens) < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.tokenizer, self.max_tokens = tokenizer, int(max_tokens)
        self.delimiters = {'"': "'"} if delimiters is None else dict(delimiters)
        specials = set(getattr(tokenizer, "all_special_tokens", []) or [])
        try:
            specials |= set(tokenizer.get_added_vocab())
        except Exception:  # some tokenizers have no added vocabulary
            pass
        parts = [re.escape(t) for t in sorted(specials, key=len, reverse=True) if t.strip()]
        self._special = re.compile("|".join(parts + [_CHAT_MARKUP]))

    def clean_one(self, text) -> str:
        """``text`` without control characters, special tokens or delimiters (no truncation)."""
        text = unicodedata.normalize("NFKC", "" if text is None else str(text))
        text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
        while True:  # removing one token can join the halves of another: repeat until stable
            stripped = self._special.sub(" ", text)
            if stripped == text:
                break
            text = stripped
        for old, new in self.delimiters.items():
            text = text.replace(old, new)
        return " ".join(text.split())

    def __call__(self, texts: list[str], max_tokens: int | None = None) -> list[str]:
        """Clean texts and cut each to ``max_tokens`` tokens (default: the sanitizer's), in
        one tokenizer call."""
        clean = [self.clean_one(t) for t in texts]
        if not clean:
            return clean
        tok, limit = self.tokenizer, self.max_tokens if max_tokens is None else int(max_tokens)
        try:
            enc = tok(clean, add_special_tokens=False, return_offsets_mapping=True)
            offsets = enc["offset_mapping"]
        except (NotImplementedError, TypeError, ValueError):  # slow tokenizers: no offsets
            ids = tok(clean, add_special_tokens=False)["input_ids"]
            return [t if len(i) <= limit else self.clean_one(tok.decode(i[:limit])) for t, i in zip(clean, ids)]
        # cut where the first dropped token starts: a character split over several byte tokens
        # (CJK, emoji) goes whole, rather than pulling in the tokens after the limit
        return [t if len(o) <= limit else t[: o[limit][0]].rstrip() for t, o in zip(clean, offsets)]


class ChatFormat:
    """Turn ``(system, user)`` messages into the prompt text that precedes the answer,
    through the tokenizer's chat template when it has one, and find the text that closes
    an assistant turn (e.g. ``<|im_end|>``), which the ranker scores after each answer so
    that an answer that is a prefix of another ("1" and "12") is not favoured.
    """

    _SENTINEL = "\u2063ANSWER\u2063"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))

    def prefix(self, system: str, user: str) -> str:
        """Prompt text up to where the assistant's answer starts."""
        if not self.has_chat_template:
            head = f"{system}\n\n" if system else ""
            return f"{head}{user}\n\nAnswer: "
        return self.tokenizer.apply_chat_template(self._messages(system, user), tokenize=False,
                                                  add_generation_prompt=True)

    def end_of_answer(self, system: str = "s", user: str = "u") -> str:
        """Text that closes the assistant's turn (its end-of-turn token, no trailing newline)."""
        eos = getattr(self.tokenizer, "eos_token", None) or ""
        if not self.has_chat_template:
            return eos
        msgs = self._messages(system, user) + [{"role": "assistant", "content": self._SENTINEL}]
        full = self.tokenizer.apply_chat_template(msgs, tokenize=False)
        head = self.prefix(system, user)
        if not full.startswith(head) or self._SENTINEL not in full:
            return eos
        return full[len(head):].split(self._SENTINEL, 1)[1].rstrip() or eos

    @staticmethod
    def _messages(system: str, user: str) -> list[dict]:
        msgs = [{"role": "system", "content": system}] if system else []
        return msgs + [{"role": "user", "content": user}]


#: Token budget of one candidate's evidence text: a generated line of numbers, at most 45
#: tokens in SmolLM2's tokenizer (seven-digit counts and the rank); the cap only guards
#: against evidence a caller passes to ``rank()``.
EVIDENCE_TOKENS = 96


class PromptBuilder:
    """Token ids of ranking prompts: clean texts rendered through a template and the chat
    format, kept within a prompt token budget.

    A prompt over ``max_prompt_tokens`` loses its oldest history items first (the fewest
    that make it fit); with no history left, the candidates' texts are cut to the most
    tokens (below ``max_item_tokens``) that fit. Candidates and their evidence are never
    dropped: a budget too small even for one-token texts is an error.

    Args:
        template: a :class:`PromptTemplate`.
        tokenizer: the model's tokenizer.
        max_item_tokens: tokens kept per item text.
        max_prompt_tokens: prompt token budget (``None``: no budget).
    """

    def __init__(self, template: PromptTemplate, tokenizer, max_item_tokens: int = 32,
                 max_prompt_tokens: int | None = None):
        self.template, self.tokenizer = template, tokenizer
        self.max_prompt_tokens = None if max_prompt_tokens is None else int(max_prompt_tokens)
        self.sanitizer = TextSanitizer(tokenizer, max_item_tokens)
        self.evidence_sanitizer = TextSanitizer(tokenizer, EVIDENCE_TOKENS)
        self.chat = ChatFormat(tokenizer)
        self.end = self.chat.end_of_answer()

    def clean(self, history: list[str], candidates: list[str], evidence: list[str] | None = None):
        """``(history, candidates, evidence)`` cleaned: raw item texts and evidence made
        safe (:class:`TextSanitizer`; evidence has its own token budget, :data:`EVIDENCE_TOKENS`)."""
        texts = self.sanitizer(list(history) + list(candidates))
        ev = None if evidence is None else self.evidence_sanitizer(list(evidence))
        return texts[:len(history)], texts[len(history):], ev

    def build(self, history: list[str], candidates: list[str], evidence: list[str] | None = None):
        """``(prompt ids, answer ids of each candidate, labels)`` for clean texts, within the budget.

        Raises:
            ValueError: the budget cannot hold the candidates even with one-token texts.
        """
        labels = candidate_labels(len(candidates))
        hist, cands = list(history), list(candidates)
        prefix = self._encode(hist, cands, labels, evidence)
        budget = self.max_prompt_tokens
        if budget is not None and len(prefix) > budget and hist:
            k = self._fewest(lambda k: len(self._encode(hist[k:], cands, labels, evidence)) <= budget, 1, len(hist))
            hist = hist[k:]
            prefix = self._encode(hist, cands, labels, evidence)
        if budget is not None and len(prefix) > budget:
            top = self.sanitizer.max_tokens - 1
            cut = lambda t: self.sanitizer(cands, max_tokens=t)  # noqa: E731
            fits = lambda t: len(self._encode(hist, cut(t), labels, evidence)) <= budget  # noqa: E731
            if top < 1 or not fits(1):
                raise ValueError(f"max_prompt_tokens={budget} cannot hold {len(cands)} candidates and their "
                                 f"evidence even with one-token texts and no history ({len(prefix)} tokens now)")
            t = top - self._fewest(lambda d: fits(top - d), 0, top - 1)  # the most tokens that fit
            cands = cut(t)
            prefix = self._encode(hist, cands, labels, evidence)
        answers = [self.template.answer(l, t) + self.end for l, t in zip(labels, cands)]
        return prefix, self.tokenizer(answers, add_special_tokens=False)["input_ids"], labels

    def _encode(self, history, candidates, labels, evidence) -> list[int]:
        system, user = self.template.render(history, candidates, labels, evidence)
        return list(self.tokenizer(self.chat.prefix(system, user), add_special_tokens=False)["input_ids"])

    @staticmethod
    def _fewest(ok, lo: int, hi: int) -> int:
        """The smallest ``k`` in ``lo..hi`` with ``ok(k)`` (``ok`` monotone; ``hi`` if none)."""
        while lo < hi:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo
