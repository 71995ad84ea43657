"""DistMult (Yang et al., ICLR 2015)."""

from __future__ import annotations

import torch
from torch import nn

from embedlab.kge.config import ModelConfig


class DistMult(nn.Module):
    """``score = sum_i h_i r_i t_i``. Shapes: ``(..., d)`` broadcastable -> ``(...)``;
    relation width = entity width."""

    @classmethod
    def from_config(cls, config: ModelConfig) -> DistMult:
        return cls()

    def relation_dim(self, dim: int) -> int:
        return dim

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return h * r

    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (h * r * t).sum(-1)
