"""Self-adversarial negative sampling, SANS (Sun et al., ICLR 2019; paper 002, eqs. 10-14)."""

from __future__ import annotations

import torch

from embedlab.losses.ns import Reduction, ns, uniform_negative_weights


def sans_negative_weights(
    scores: torch.Tensor,
    positives: torch.Tensor,
    *,
    adversarial_temperature: float,
    negative_reduction: Reduction,
) -> torch.Tensor:
    """``p_θ̂(y'|x) = softmax(α f(x, y'))`` over each row's negatives (eq. 14), detached, scaled to
    the total weight of uniform negatives (``v`` for ``sum``, 1 for ``mean``) so that ``α = 0``
    gives exactly :func:`ns`.

    Args:
        scores: ``(B, M)``; positives: ``(B, M)`` bool; adversarial_temperature: α >= 0.

    Returns:
        ``(B, M)`` weights, 0 on positives, no gradient.
    """
    logits = (adversarial_temperature * scores.detach()).masked_fill(positives, float("-inf"))
    soft = torch.softmax(logits, dim=1).nan_to_num(0.0)  # a row with no negative -> 0
    total = uniform_negative_weights(positives, negative_reduction).sum(dim=1, keepdim=True)
    return soft * total


def sans(
    scores: torch.Tensor,
    positives: torch.Tensor,
    *,
    adversarial_temperature: float,
    margin: float = 0.0,
    negative_reduction: Reduction = "sum",
) -> torch.Tensor:
    """NS (eq. 6) whose negatives are weighted by ``p_θ̂`` of eq. 14 (weights detached).

    The objective distribution is approximately ``(1 - λ) p_d(y|x) + λ u{1, N}`` (eq. 13,
    table 1), like SCE w/ LS.

    Args:
        scores: ``(B, M)``; positives: ``(B, M)`` bool; adversarial_temperature: α;
        margin: γ; negative_reduction: see :func:`embedlab.losses.ns.ns`.

    Returns:
        scalar sum over rows.

    Raises:
        ValueError: negative ``adversarial_temperature``.
    """
    if adversarial_temperature < 0:
        raise ValueError(
            f"SANS adversarial_temperature α must be >= 0, got {adversarial_temperature}"
        )
    weights = sans_negative_weights(
        scores,
        positives,
        adversarial_temperature=adversarial_temperature,
        negative_reduction=negative_reduction,
    )
    return ns(
        scores,
        positives,
        margin=margin,
        negative_weights=weights,
        negative_reduction=negative_reduction,
    )
