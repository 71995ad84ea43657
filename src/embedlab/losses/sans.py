"""Self-adversarial negative sampling, SANS (Sun et al., ICLR 2019; paper 002, eqs. 10-14)."""

from __future__ import annotations

import torch

from embedlab.losses.ns import Reduction, ns, uniform_negative_weights


def sans_negative_weights(
    scores: torch.Tensor, positives: torch.Tensor, *, alpha: float, reduction: Reduction
) -> torch.Tensor:
    """``p_θ̂(y'|x) = softmax(α f(x, y'))`` over each row's negatives (eq. 14), detached, scaled to
    the total weight of uniform negatives (``v`` for ``sum``, 1 for ``mean``) so that ``α = 0``
    gives exactly :func:`ns`.

    Args:
        scores: ``(B, M)``; positives: ``(B, M)`` bool; alpha: temperature α >= 0.

    Returns:
        ``(B, M)`` weights, 0 on positives, no gradient.
    """
    logits = (alpha * scores.detach()).masked_fill(positives, float("-inf"))
    soft = torch.softmax(logits, dim=1).nan_to_num(0.0)  # a row with no negative -> 0
    total = uniform_negative_weights(positives, reduction).sum(dim=1, keepdim=True)
    return soft * total


def sans(
    scores: torch.Tensor,
    positives: torch.Tensor,
    *,
    alpha: float,
    gamma: float = 0.0,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """NS (eq. 6) whose negatives are weighted by ``p_θ̂`` of eq. 14 (weights detached).

    The objective distribution is approximately ``(1 - λ) p_d(y|x) + λ u{1, N}`` (eq. 13,
    table 1), like SCE w/ LS.

    Args:
        scores: ``(B, M)``; positives: ``(B, M)`` bool; alpha: temperature α; gamma: margin;
        reduction: see :func:`embedlab.losses.ns.ns`.

    Returns:
        scalar sum over rows.

    Raises:
        ValueError: negative ``alpha``.
    """
    if alpha < 0:
        raise ValueError(f"SANS temperature alpha must be >= 0, got {alpha}")
    weights = sans_negative_weights(scores, positives, alpha=alpha, reduction=reduction)
    return ns(scores, positives, gamma=gamma, negative_weights=weights, reduction=reduction)
