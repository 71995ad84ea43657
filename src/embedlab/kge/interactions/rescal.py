"""RESCAL (Nickel et al., ICML 2011; as in LibKGE and paper 002)."""

from __future__ import annotations

import torch
from torch import nn

from embedlab.kge.config import ModelConfig


class Rescal(nn.Module):
    """``score = h^T M_r t`` with a full ``d x d`` matrix per relation.

    A relation row of width ``d * d`` is ``M_r`` row-major. ``query(h, r) = h^T M_r``.
    Shapes: ``h, t (..., d)``, ``r (..., d*d)`` broadcastable -> ``(...)``.
    """

    @classmethod
    def from_config(cls, config: ModelConfig) -> Rescal:
        return cls(dim=config.dim)

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def relation_dim(self, dim: int) -> int:
        return dim * dim

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        m = r.unflatten(-1, (self.dim, self.dim))  # (..., d, d)
        return (h.unsqueeze(-2) @ m).squeeze(-2)  # (..., 1, d) @ (..., d, d) -> (..., d)

    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (self.query(h, r) * t).sum(-1)
