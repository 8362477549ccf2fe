"""Every model, data set and split by name, importable without torch or pandas, so that the
command line rejects a mistyped name in well under a second, before loading anything.

The registries that build things (:data:`hybridrec.models.registry.REGISTRY`,
:data:`hybridrec.data.loaders.DATASETS`, :data:`hybridrec.data.splits.SPLIT_KINDS`) take
their names from here; a test checks the lists agree.
"""

from __future__ import annotations

#: model name -> "module:Class" of every registered scorer (imported on first use).
MODEL_CLASSES: dict[str, str] = {
    "random": "hybridrec.models.random:RandomScores",
    "popularity": "hybridrec.models.popularity:Popularity",
    "mf": "hybridrec.models.mf:MF",
    "lightgcn": "hybridrec.models.lightgcn:LightGCN",
    "ngcf": "hybridrec.models.ngcf:NGCF",
    "gfcf": "hybridrec.models.gfcf:GFCF",
    "bspm": "hybridrec.models.bspm:BSPM",
    "content": "hybridrec.models.content:ContentRecommender",
    "hybrid": "hybridrec.models.hybrid:HybridRecommender",
    "pinsage": "hybridrec.models.pinsage:PinSage",
    "llm": "hybridrec.llm.ranker:LLMRanker",
}

#: models ``hybridrec recommend --run`` takes from a run folder when ``--model`` is not given, best first.
PREFERRED_FOR_RECOMMEND: tuple[str, ...] = ("hybrid", "pinsage", "lightgcn", "bspm", "gfcf", "ngcf", "mf", "content",
                                            "popularity")

#: every name :func:`hybridrec.data.load_dataset` knows.
DATASET_NAMES: tuple[str, ...] = (
    "synthetic", "ml-100k", "ml-1m", "ml-latest-small", "gowalla", "yelp2018", "amazon-book", "csv",
    "huggingface", "amazon-2023",
)


def check_model_names(names, where: str = "model.name") -> None:
    """Raise ``ValueError`` for a name that is not a registered model, listing the valid ones."""
    for name in names:
        if name not in MODEL_CLASSES:
            raise ValueError(f"{where}: unknown model {name!r}; valid models: {', '.join(sorted(MODEL_CLASSES))}")


def check_dataset_name(name: str) -> None:
    """Raise ``ValueError`` for a data set name :func:`~hybridrec.data.load_dataset` does not know."""
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASET_NAMES)}")
