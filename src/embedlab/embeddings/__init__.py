"""Embedding layers: index transform -> lookup -> dropout."""

from embedlab.embeddings.lookup import EmbeddingTable

__all__ = ["EmbeddingTable"]
