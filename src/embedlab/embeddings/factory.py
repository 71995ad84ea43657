"""One registry of embedding-layer kinds (``<table>_embedding.kind``) and their factory."""

from __future__ import annotations

import torch

from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.kd import KdEmbedding
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.embeddings.template import EmbeddingLayer

EMBEDDING_LAYERS: dict[str, type[EmbeddingLayer]] = {"lookup": EmbeddingTable, "kd": KdEmbedding}


def build_embedding(
    *,
    num_rows: int,
    dim: int,
    config: EmbeddingConfig,
    graph: RowGraph | None = None,
    teacher: torch.Tensor | None = None,
) -> EmbeddingLayer:
    """The layer of kind ``config.kind`` with N = ``num_rows`` rows of width ``dim``.

    ``teacher`` ``(N, dim)``: the pre-trained table of KD's PDG guidance (ignored by ``lookup``).
    """
    if config.kind == "kd":
        return KdEmbedding(num_rows=num_rows, dim=dim, config=config, graph=graph, teacher=teacher)
    return EmbeddingTable(num_rows=num_rows, dim=dim, config=config, graph=graph)
