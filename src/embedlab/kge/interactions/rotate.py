"""RotatE (Sun et al., ICLR 2019)."""

from __future__ import annotations

import torch
from torch import nn

from embedlab.errors import UserError
from embedlab.kge.config import ModelConfig
from embedlab.kge.interactions.distance_kernels import DistanceKind


class RotatE(nn.Module):
    """``score = -sum_i |h_i * e^{i θ_{r,i}} - t_i|`` (Sun et al. 2019, eq. 3 with the L1 sum of
    complex moduli).

    Entity rows of width ``d`` hold ``d/2`` complex numbers (real parts first, as ComplEx; LibKGE
    and paper 002's ``dim`` count real numbers); relation rows hold ``d/2`` phases in radians
    (LibKGE's RotatE). Tail-distance: ``anchor(h, r) = h ∘ e^{iθ_r}``,
    ``distance(a, t) = sum_i |a_i - t_i|``. Scores are bounded above by 0.

    Raises:
        UserError: odd ``dim``.
    """

    @classmethod
    def from_config(cls, config: ModelConfig) -> RotatE:
        return cls(dim=config.dim)

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise UserError(f"model.dim must be even for RotatE (real + imaginary), got {dim}")

    distance_kind: DistanceKind = "rotate"  # the fused all-candidates kernel's distance

    def relation_dim(self, dim: int) -> int:
        return dim // 2

    def anchor(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        h_re, h_im = h.chunk(2, dim=-1)
        cos, sin = torch.cos(r), torch.sin(r)
        return torch.cat([h_re * cos - h_im * sin, h_re * sin + h_im * cos], dim=-1)

    def distance(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        diff = a - t
        d_re, d_im = diff.chunk(2, dim=-1)
        # epsilon: the modulus has no gradient at 0
        return (d_re * d_re + d_im * d_im).add(1e-12).sqrt().sum(-1)

    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -self.distance(self.anchor(h, r), t)
