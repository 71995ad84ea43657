"""TuckER (Balazevic et al., EMNLP 2019)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from embedlab.kge.config import ModelConfig, TuckerConfig


class TuckER(nn.Module):
    """``score = W ×_1 h ×_2 r ×_3 t`` with a core tensor ``W (d, d_r, d)`` shared by all relations.

    ``query(h, r)_k = sum_ij W_ijk h_i r_j``. W is initialized U(-1, 1) as in the TuckER code.

    With ``model.tucker`` (:class:`~embedlab.kge.config.TuckerConfig`) the query is the original
    model's (Balazevic et al. 2019, their code): ``x = dropout_in(bn0(h))``,
    ``W_r = dropout_1(W ×_2 r)`` ``(d, d)`` per query, ``query = dropout_2(bn1(x W_r))``; the
    candidates are the plain entity rows. Batch norm uses batch statistics in training and
    running statistics in evaluation (``model.eval()``).
    Shapes: ``h, t (..., d)``, ``r (..., d_r)`` broadcastable -> ``(...)``.
    """

    @classmethod
    def from_config(cls, config: ModelConfig) -> TuckER:
        return cls(
            dim=config.dim, relation_dim=config.relation_dim or config.dim, layers=config.tucker
        )

    def __init__(self, *, dim: int, relation_dim: int, layers: TuckerConfig | None = None) -> None:
        super().__init__()
        self._relation_dim = relation_dim
        self.core = nn.Parameter(torch.empty(dim, relation_dim, dim).uniform_(-1.0, 1.0))
        self.layers = layers or TuckerConfig()
        self.bn0 = nn.BatchNorm1d(dim) if self.layers.batch_norm else None
        self.bn1 = nn.BatchNorm1d(dim) if self.layers.batch_norm else None

    def relation_dim(self, dim: int) -> int:
        return self._relation_dim

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        d, dr, _ = self.core.shape
        shape = torch.broadcast_shapes(h.shape[:-1], r.shape[:-1])
        h2 = h.expand(*shape, d).reshape(-1, d)  # (B, d)
        r2 = r.expand(*shape, dr).reshape(-1, dr)  # (B, d_r)
        if self.layers == TuckerConfig():
            w_h = (h2 @ self.core.view(d, dr * d)).view(-1, dr, d)  # (B, d_r, d)
            return (r2.unsqueeze(1) @ w_h).view(*shape, d)  # (B, 1, d_r) @ (B, d_r, d)
        layers = self.layers
        x = self.bn0(h2) if self.bn0 is not None else h2
        x = F.dropout(x, layers.input_dropout, self.training)
        # W ×_2 r: (B, d_r) against W (d, d_r, d) -> (B, d, d), one matrix per query
        w_r = (r2 @ self.core.permute(1, 0, 2).reshape(dr, d * d)).view(-1, d, d)
        w_r = F.dropout(w_r, layers.hidden_dropout1, self.training)
        x = (x.unsqueeze(1) @ w_r).squeeze(1)  # (B, d)
        x = self.bn1(x) if self.bn1 is not None else x
        return F.dropout(x, layers.hidden_dropout2, self.training).view(*shape, d)

    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (self.query(h, r) * t).sum(-1)
