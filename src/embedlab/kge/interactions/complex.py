"""ComplEx (Trouillon et al., ICML 2016)."""

from __future__ import annotations

import torch
from torch import nn

from embedlab.errors import UserError
from embedlab.kge.config import ModelConfig


class ComplEx(nn.Module):
    """``score = Re(<h, r, conj(t)>)``.

    A width-``d`` row holds ``d/2`` complex numbers: real parts first, imaginary parts second.
    ``query(h, r) = [Re(h r), Im(h r)]`` so that ``score = <query, t>``.
    Shapes: ``(..., d)`` broadcastable -> ``(...)``; relation width = ``d``.

    Raises:
        UserError: odd ``dim``.
    """

    @classmethod
    def from_config(cls, config: ModelConfig) -> ComplEx:
        return cls(dim=config.dim)

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise UserError(f"model.dim must be even for ComplEx (real + imaginary), got {dim}")

    def relation_dim(self, dim: int) -> int:
        return dim

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        h_re, h_im = h.chunk(2, dim=-1)
        r_re, r_im = r.chunk(2, dim=-1)
        return torch.cat([h_re * r_re - h_im * r_im, h_re * r_im + h_im * r_re], dim=-1)

    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h_re, h_im = h.chunk(2, dim=-1)
        r_re, r_im = r.chunk(2, dim=-1)
        t_re, t_im = t.chunk(2, dim=-1)
        return (
            h_re * r_re * t_re + h_im * r_re * t_im + h_re * r_im * t_im - h_im * r_im * t_re
        ).sum(-1)
