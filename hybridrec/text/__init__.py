"""Item text: strings from item tables, sentence-transformer encoders, an embedding cache."""

from .cache import EmbeddingCache, default_cache_folder
from .encoder import DEFAULT_MODEL, TextEncoder, TextModelError
from .item_text import DEFAULT_TEMPLATE, item_strings, render

__all__ = ["TextEncoder", "TextModelError", "DEFAULT_MODEL", "EmbeddingCache", "default_cache_folder",
           "DEFAULT_TEMPLATE", "item_strings", "render"]
