"""Graph utilities: the normalised bipartite adjacency, sparse propagation, and the random
walks with restart of PinSage's importance neighbourhoods."""

from .adjacency import BipartiteGraph, normalized_bipartite
from .walks import WalkGraph, computation_graph, importance_neighbours, neighbour_table

__all__ = ["BipartiteGraph", "normalized_bipartite", "WalkGraph", "computation_graph", "importance_neighbours",
           "neighbour_table"]
