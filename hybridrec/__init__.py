"""hybridrec: hybrid LLM + GNN recommendation on one evaluation harness.

Recommending is link prediction on the bipartite user-item graph. The package is laid out
so data flows one way::

    raw files -> data.Interactions -> data.splits -> models.*.fit -> eval.evaluate -> report
"""

__version__ = "0.1.0"
