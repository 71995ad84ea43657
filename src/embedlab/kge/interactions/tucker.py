"""TuckER (Balazevic et al., EMNLP 2019)."""

from __future__ import annotations

import torch
from torch import nn

from embedlab.kge.config import ModelConfig


class TuckER(nn.Module):
    """``score = W ×_1 h ×_2 r ×_3 t`` with a core tensor ``W (d, d_r, d)`` shared by all relations.

    ``query(h, r)_k = sum_ij W_ijk h_i r_j``. W is initialized U(-1, 1) as in the TuckER code.
    Not reproduced: the batch normalization and the two hidden dropouts of the original model
    (paper 002's tables 5-6 list entity and relation dropout only).
    Shapes: ``h, t (..., d)``, ``r (..., d_r)`` broadcastable -> ``(...)``.
    """

    @classmethod
    def from_config(cls, config: ModelConfig) -> TuckER:
        return cls(dim=config.dim, relation_dim=config.relation_dim or config.dim)

    def __init__(self, *, dim: int, relation_dim: int) -> None:
        super().__init__()
        self._relation_dim = relation_dim
        self.core = nn.Parameter(torch.empty(dim, relation_dim, dim).uniform_(-1.0, 1.0))

    def relation_dim(self, dim: int) -> int:
        return self._relation_dim

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        d, dr, _ = self.core.shape
        shape = torch.broadcast_shapes(h.shape[:-1], r.shape[:-1])
        h2 = h.expand(*shape, d).reshape(-1, d)  # (B, d)
        r2 = r.expand(*shape, dr).reshape(-1, 1, dr)  # (B, 1, d_r)
        w_h = (h2 @ self.core.view(d, dr * d)).view(-1, dr, d)  # (B, d_r, d)
        return (r2 @ w_h).view(*shape, d)  # (B, 1, d_r) @ (B, d_r, d) -> (..., d)

    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (self.query(h, r) * t).sum(-1)
