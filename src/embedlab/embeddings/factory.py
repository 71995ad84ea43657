"""One registry of embedding-layer kinds (``<table>_embedding.kind``) and their factory."""

from __future__ import annotations

import inspect
from typing import Any, Protocol

import torch

from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.kd import KdEmbedding
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.embeddings.template import EmbeddingLayer


class LayerClass(Protocol):
    """A registry entry: the layer class; its constructor takes at least these arguments."""

    def __call__(
        self, *, num_rows: int, dim: int, config: EmbeddingConfig, graph: RowGraph | None = None
    ) -> EmbeddingLayer: ...


EMBEDDING_LAYERS: dict[str, LayerClass] = {"lookup": EmbeddingTable, "kd": KdEmbedding}


def build_embedding(
    *,
    num_rows: int,
    dim: int,
    config: EmbeddingConfig,
    graph: RowGraph | None = None,
    teacher: torch.Tensor | None = None,
) -> EmbeddingLayer:
    """The layer of kind ``config.kind`` with N = ``num_rows`` rows of width ``dim``.

    Every kind takes ``num_rows``, ``dim``, ``config`` and ``graph``; the optional inputs are
    passed to the kinds whose constructor declares them: ``teacher`` ``(N, dim)``, the
    pre-trained table of KD's PDG guidance (``kd``; a ``lookup`` table has no use for it).
    """
    layer = EMBEDDING_LAYERS[config.kind]
    optional = {"teacher": teacher}
    declared = inspect.signature(layer).parameters
    kwargs: dict[str, Any] = {k: v for k, v in optional.items() if k in declared}
    return layer(num_rows=num_rows, dim=dim, config=config, graph=graph, **kwargs)
