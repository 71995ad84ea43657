"""Embedding layers: index transform -> lookup -> dropout (plain tables, SSE, KD codes)."""

from embedlab.embeddings.compression import compression_report
from embedlab.embeddings.factory import EMBEDDING_LAYERS, build_embedding
from embedlab.embeddings.kd import KdEmbedding, set_training_progress
from embedlab.embeddings.kd_compact import CompactKdEmbedding, export_kd, load_compact, save_compact
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.embeddings.template import EmbeddingLayer

__all__ = [
    "EMBEDDING_LAYERS",
    "CompactKdEmbedding",
    "EmbeddingLayer",
    "EmbeddingTable",
    "KdEmbedding",
    "build_embedding",
    "compression_report",
    "export_kd",
    "load_compact",
    "save_compact",
    "set_training_progress",
]
