"""One registry of embedding-layer kinds (``<table>_embedding.kind``) and their factory."""

from __future__ import annotations

from typing import Protocol

import torch

from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.kd import KdEmbedding
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.embeddings.sharded import ShardedEmbeddingTable
from embedlab.embeddings.template import EmbeddingLayer


class LayerBuilder(Protocol):
    """A registry entry: builds one kind of layer from the inputs every kind is given."""

    def __call__(
        self,
        *,
        num_rows: int,
        dim: int,
        config: EmbeddingConfig,
        graph: RowGraph | None,
        teacher: torch.Tensor | None,
    ) -> EmbeddingLayer: ...


def _lookup(
    *,
    num_rows: int,
    dim: int,
    config: EmbeddingConfig,
    graph: RowGraph | None,
    teacher: torch.Tensor | None,
) -> EmbeddingLayer:
    """A plain ``(N, d)`` table (a pre-trained ``teacher`` is KD's input; a lookup table is
    initialized by ``config.init``, or copied by ``--init-from``)."""
    return EmbeddingTable(num_rows=num_rows, dim=dim, config=config, graph=graph)


def _kd(
    *,
    num_rows: int,
    dim: int,
    config: EmbeddingConfig,
    graph: RowGraph | None,
    teacher: torch.Tensor | None,
) -> EmbeddingLayer:
    """Rows composed from KD codes; ``teacher`` is PDG's pre-trained table (paper 003)."""
    return KdEmbedding(num_rows=num_rows, dim=dim, config=config, graph=graph, teacher=teacher)


EMBEDDING_LAYERS: dict[str, LayerBuilder] = {"lookup": _lookup, "kd": _kd}


def build_embedding(
    *,
    num_rows: int,
    dim: int,
    config: EmbeddingConfig,
    graph: RowGraph | None = None,
    teacher: torch.Tensor | None = None,
    optimizer: str = "adam",
    lr: float = 0.0,
) -> EmbeddingLayer:
    """The layer of kind ``config.kind`` (:data:`EMBEDDING_LAYERS`) with N = ``num_rows`` rows of
    width ``dim``; ``teacher`` ``(N, dim)``: the pre-trained table of KD's PDG guidance.

    ``config.sharding == "row_wise"`` builds a :class:`ShardedEmbeddingTable` (a lookup table
    split over the ranks, updated by a fused optimizer); ``optimizer`` and ``lr`` are the
    training optimizer's name and learning rate, read by that table only.
    """
    if config.sharding == "row_wise":
        return ShardedEmbeddingTable(
            num_rows=num_rows, dim=dim, config=config, graph=graph, optimizer=optimizer, lr=lr
        )
    return EMBEDDING_LAYERS[config.kind](
        num_rows=num_rows, dim=dim, config=config, graph=graph, teacher=teacher
    )
