"""Graph utilities: the normalised bipartite adjacency and fast sparse propagation."""

from .adjacency import BipartiteGraph, normalized_bipartite

__all__ = ["BipartiteGraph", "normalized_bipartite"]
