"""TransE (Bordes et al., NeurIPS 2013)."""

from __future__ import annotations

import torch
from torch import nn

from embedlab.kge.config import ModelConfig
from embedlab.kge.interactions.distance_kernels import DistanceKind


class TransE(nn.Module):
    """``score = -||h + r - t||_p`` with ``p`` = 1 or 2 (``model.p_norm``).

    Tail-distance: ``anchor(h, r) = h + r``, ``distance(a, t) = ||a - t||_p``. Scores are
    bounded above by 0 (paper 002, §6.2.2: bounded scoring functions underfit with SCE); NS
    losses add the margin ``γ`` (``loss.margin``) as Sun et al. (2019) do.
    Shapes: ``(..., d)`` broadcastable -> ``(...)``; relation width = ``d``.
    """

    @classmethod
    def from_config(cls, config: ModelConfig) -> TransE:
        return cls(p_norm=config.p_norm)

    def __init__(self, *, p_norm: int = 1) -> None:
        super().__init__()
        if p_norm not in (1, 2):
            raise ValueError(f"TransE p_norm must be 1 or 2, got {p_norm}")
        self.p_norm = p_norm

    @property
    def distance_kind(self) -> DistanceKind:
        """The fused all-candidates kernel's distance (:mod:`.distance_kernels`)."""
        return "l1" if self.p_norm == 1 else "l2"

    def relation_dim(self, dim: int) -> int:
        return dim

    def anchor(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return h + r

    def distance(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        diff = a - t
        if self.p_norm == 1:
            return diff.abs().sum(-1)
        # sqrt with an epsilon: the gradient of ||x|| at x = 0 is undefined
        return (diff * diff).sum(-1).add(1e-12).sqrt()

    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -self.distance(self.anchor(h, r), t)
