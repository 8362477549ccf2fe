"""Data layer: the :class:`Interactions` object, id vocabularies, loaders and splits."""

from .errors import DataError, UnknownIdError
from .interactions import TEXT_FIELDS, Interactions, Split
from .loaders import CLEANING_OPTIONS, DATASET_NAMES, load_dataset
from .splits import SPLIT_KINDS, make_split
from .synthetic import generate_synthetic
from .vocab import Vocabulary

__all__ = [
    "DataError", "UnknownIdError", "Interactions", "Split", "Vocabulary", "TEXT_FIELDS",
    "load_dataset", "make_split", "generate_synthetic", "DATASET_NAMES", "SPLIT_KINDS",
    "CLEANING_OPTIONS",
]
