"""SCE with label smoothing (paper 002, eq. 17; Szegedy et al., 2016)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def sce_ls(scores: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float) -> torch.Tensor:
    """``sum_b [(1 - λ) CE(p_d(.|x_b), p_θ) + λ/N sum_i -log p_θ(y_i|x_b)]`` (eq. 17).

    The objective distribution is ``(1 - λ) p_d(y|x) + λ u{1, N}`` (table 1), which the paper
    argues approximates SANS's.

    Args:
        scores: ``(B, N)`` logits.
        targets: ``(B,)`` int64 true index, or ``(B, N)`` target distribution (rows sum to 1).
        label_smoothing: smoothing weight λ in [0, 1).

    Returns:
        scalar sum over the batch.

    Raises:
        ValueError: λ outside [0, 1).
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing λ must be in [0, 1), got {label_smoothing}")
    return F.cross_entropy(scores, targets, reduction="sum", label_smoothing=label_smoothing)
