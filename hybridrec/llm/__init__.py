"""LLM ranking: an offline causal LM scores candidate items from a prompt.

* :class:`LLMRanker` (:mod:`.ranker`): ``rank(history_texts, candidate_texts)`` for one
  user, ``score_candidates(users, candidate_items)`` against a fitted training set;
  evaluate it with :func:`hybridrec.eval.candidates.evaluate_candidates`.
* :func:`load_llm` (:mod:`.loading`): the offline SmolLM2-135M-Instruct by default, or any
  causal LM folder or hub name.
* :func:`finetune` (:mod:`.finetune`): LoRA fine-tuning of the ranker's model (``peft``) on
  candidate lists built from the training interactions (:func:`build_examples`);
  :func:`attach_adapter` (:mod:`.adapters`) loads saved adapters onto a fresh ranker, and a
  saved fine-tuned ranker carries its adapters.
* :func:`load_template`, :class:`TextSanitizer` (:mod:`.prompts`): versioned prompt
  templates from ``prompts/`` and the cleaning of untrusted item text.

transformers and peft are imported only when a model is loaded or fine-tuned.
"""

from .adapters import attach_adapter
from .finetune import FineTuneConfig, FineTuneResult, finetune
from .finetune_data import Example, build_examples
from .loading import DEFAULT_LLM, INSTALL_HINT, LLMLoadError, load_llm
from .prompts import ChatFormat, PromptTemplate, TemplateError, TextSanitizer, load_template
from .rankings import CandidateScores, Ranking, parse_choice
from .ranker import LLMRanker
from .scoring import continuation_logprobs, continuation_logprobs_naive

__all__ = [
    "LLMRanker", "Ranking", "CandidateScores", "parse_choice", "load_llm", "LLMLoadError",
    "DEFAULT_LLM", "INSTALL_HINT", "load_template", "PromptTemplate", "TemplateError",
    "TextSanitizer", "ChatFormat", "continuation_logprobs", "continuation_logprobs_naive",
    "FineTuneConfig", "FineTuneResult", "finetune", "attach_adapter", "Example", "build_examples",
]
