"""Data layer: the :class:`Interactions` object, id vocabularies, loaders and splits."""

from .build import LoadOptions
from .errors import DataError, UnknownIdError
from .frames import load_frames
from .hf import load_amazon2023, load_hf
from .interactions import TEXT_FIELDS, Interactions, Split
from .loaders import CLEANING_OPTIONS, DATASET_NAMES, load_dataset
from .pyg import from_pyg, to_pyg
from .splits import SPLIT_KINDS, make_split
from .synthetic import generate_synthetic
from .vocab import Vocabulary

__all__ = [
    "DataError", "UnknownIdError", "Interactions", "Split", "Vocabulary", "TEXT_FIELDS",
    "load_dataset", "make_split", "generate_synthetic", "DATASET_NAMES", "SPLIT_KINDS",
    "CLEANING_OPTIONS", "LoadOptions", "load_frames", "load_hf", "load_amazon2023",
    "to_pyg", "from_pyg",
]
