"""The matrix-factorization model: two embedding tables, biases and the global mean."""

from __future__ import annotations

import torch
from torch import nn

from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.recsys.config import MfConfig


class MatrixFactorization(nn.Module):
    """``r_hat(u, i) = mu + b_u + b_i + <p_u, q_i>`` (Koren et al. 2009; Surprise's SVD).

    Args:
        num_users, num_items: rows of the user table ``P (U, d)`` and item table ``Q (I, d)``.
        config: the MF config (``model.dim``, ``model.biases``, ``user_embedding``,
            ``item_embedding`` with their SSE and dropout).
        user_graph, item_graph: graphs over the rows, needed for SSE-Graph on that table.

    The SSE transform of a table (papers 000/001) replaces the row index used for both the factor
    vector and the bias of that row: the bias is one more coordinate of the row's embedding.
    """

    mean: torch.Tensor

    def __init__(
        self,
        *,
        num_users: int,
        num_items: int,
        config: MfConfig,
        user_graph: RowGraph | None = None,
        item_graph: RowGraph | None = None,
    ) -> None:
        super().__init__()
        dim = config.model.dim
        self.users = EmbeddingTable(
            num_rows=num_users, dim=dim, config=config.user_embedding, graph=user_graph
        )
        self.items = EmbeddingTable(
            num_rows=num_items, dim=dim, config=config.item_embedding, graph=item_graph
        )
        self.biases = config.model.biases
        self.user_bias = nn.Parameter(torch.zeros(num_users), requires_grad=False)
        self.item_bias = nn.Parameter(torch.zeros(num_items), requires_grad=False)
        self.register_buffer("mean", torch.zeros(()))

    @torch.no_grad()
    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predicted ratings ``(R,)`` for ``(R,)`` user and item rows (no SSE, no dropout)."""
        dot = (self.users.weight[users] * self.items.weight[items]).sum(-1)
        if self.biases:
            dot = dot + self.user_bias[users] + self.item_bias[items]
        return dot + self.mean

    @torch.no_grad()
    def predict_all(self, users: torch.Tensor) -> torch.Tensor:
        """Predicted ratings ``(B, I)`` of ``(B,)`` user rows for every item (unclipped)."""
        dot = self.users.weight[users] @ self.items.weight.T  # (B, I)
        if self.biases:
            dot = dot + self.user_bias[users].unsqueeze(1) + self.item_bias
        return dot + self.mean
