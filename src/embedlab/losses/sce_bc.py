"""SCE with backward correction (paper 002, eq. 16; Patrini et al., 2017)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def sce_bc(scores: torch.Tensor, targets: torch.Tensor, *, weights: torch.Tensor) -> torch.Tensor:
    """``sum_b w_b * -log p_θ(y_b|x_b)`` with ``w_b = T_{x,y}^{-1}`` (eqs. 15-16).

    With unigram noise ``p_n(y|x) = p_d(y)`` the weight is ``#x / #y`` up to a constant (eq. 16):
    :func:`embedlab.kge.frequencies.backward_correction_weights` computes it from training counts.
    The objective distribution is ``T_{x,y}^{-1} p_d(y|x)`` (table 1).

    Args:
        scores: ``(B, N)`` logits. targets: ``(B,)`` int64 true index.
        weights: ``(B,)`` non-negative per-example weights (not differentiated).

    Returns:
        scalar weighted sum over the batch.
    """
    ce = F.cross_entropy(scores, targets, reduction="none")  # (B,)
    return (weights.detach() * ce).sum()
