"""Item text: strings from item tables, text encoders (sentence-transformers, a causal LM's
hidden states), an embedding cache."""

from .cache import EmbeddingCache, default_cache_folder
from .encoder import DEFAULT_MODEL, CachedEncoder, TextEncoder, TextModelError, make_encoder, parse_text_model
from .item_text import DEFAULT_TEMPLATE, item_strings, render
from .llm_features import LLMItemEncoder

__all__ = ["TextEncoder", "LLMItemEncoder", "CachedEncoder", "make_encoder", "parse_text_model", "TextModelError",
           "DEFAULT_MODEL", "EmbeddingCache", "default_cache_folder", "DEFAULT_TEMPLATE", "item_strings", "render"]
