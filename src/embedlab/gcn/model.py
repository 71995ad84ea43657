"""The two-layer GCN of Kipf & Welling (ICLR 2017), with a learnable node table (paper 003).

``logits = Â drop(ReLU(Â drop(X) W0)) W1``; the softmax of eq. 2 is the loss's (:mod:`embedlab.gcn.task`). ``X`` is the bag-of-words matrix, the
``node_embedding`` table (lookup or KD codes, paper 003 eq. 2-3: "the network weights W and the
node embedding matrix X are learned simultaneously"), or both side by side. Weights are Glorot
uniform without bias, as ``tkipf/gcn``'s ``GraphConvolution``.
"""

from __future__ import annotations

import torch
from torch import nn

from embedlab.embeddings import EmbeddingLayer, build_embedding
from embedlab.gcn.config import GcnConfig


def propagate(adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``Â x``: ``adjacency (N, N)`` sparse COO (``torch.sparse.mm``) or dense, ``x (N, k)``
    -> ``(N, k)``."""
    if adjacency.is_sparse:
        return torch.sparse.mm(adjacency, x)
    return adjacency @ x


class Gcn(nn.Module):
    """Two graph-convolution layers over N nodes (paper 003 eq. 2; Kipf & Welling eq. 9).

    Args:
        num_nodes: N (rows of the node table).
        num_features: F, width of the bag-of-words rows (unused with ``features: embedding``).
        num_classes: C.
        config: ``model`` widths and ``features``, and the ``node_embedding`` table config.
        teacher: ``(N, embedding_dim)`` pre-trained node table for a KD table with
            ``kd.guidance: pdg`` (paper 003, section 2.3).

    ``forward(adjacency, features)``: ``Â (N, N)`` (sparse or dense), ``features (N, F)`` or
    ``None`` when ``model.features`` is ``embedding`` -> logits ``(N, C)``.

    Raises:
        ValueError: ``features`` is missing (or given) against ``model.features``.
    """

    def __init__(
        self,
        *,
        num_nodes: int,
        num_features: int,
        num_classes: int,
        config: GcnConfig,
        teacher: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        mc = config.model
        self.mode = mc.features
        width = 0 if self.mode == "embedding" else num_features
        self.node_embedding: EmbeddingLayer | None = None
        if self.mode != "bag_of_words":
            self.node_embedding = build_embedding(
                num_rows=num_nodes,
                dim=mc.embedding_dim,
                config=config.node_embedding,
                teacher=teacher,
            )
            width += mc.embedding_dim
        self.w0 = nn.Linear(width, mc.hidden, bias=False)
        self.w1 = nn.Linear(mc.hidden, num_classes, bias=False)
        self.drop = nn.Dropout(mc.dropout)
        nn.init.xavier_uniform_(self.w0.weight)
        nn.init.xavier_uniform_(self.w1.weight)

    def node_matrix(self, features: torch.Tensor | None) -> torch.Tensor:
        """``X (N, F_in)``: ``features``, the node table's rows, or both concatenated."""
        if self.mode == "bag_of_words":
            if features is None:
                raise ValueError("model.features=bag_of_words needs the feature matrix")
            return features
        assert self.node_embedding is not None
        table = self.node_embedding.all()  # (N, embedding_dim), the table's own dropout
        if self.mode == "embedding":
            return table
        if features is None:
            raise ValueError("model.features=both needs the feature matrix")
        return torch.cat([features, table], dim=1)  # (N, F + embedding_dim)

    def forward(self, adjacency: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        x = self.drop(self.node_matrix(features))  # (N, F_in)
        hidden = torch.relu(propagate(adjacency, self.w0(x)))  # (N, hidden)
        return propagate(adjacency, self.w1(self.drop(hidden)))  # (N, C)

    def penalty(self, weight_decay: float) -> torch.Tensor:
        """``weight_decay / 2 * ||W0||^2`` (Kipf's first-layer L2) plus the node table's penalty
        over all rows (a scalar, returned, never accumulated)."""
        total = 0.5 * weight_decay * self.w0.weight.pow(2).sum()
        if self.node_embedding is not None:
            rows = torch.arange(self.node_embedding.num_rows, device=self.w0.weight.device)
            total = total + self.node_embedding.penalty(rows)
        return total
