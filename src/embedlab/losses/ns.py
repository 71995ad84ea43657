"""Negative sampling (paper 002, eq. 6) and its frequency-weighted reading (NS w/ Freq, §3.1.2).

Binary-family losses take a score matrix and a positives mask, so one function serves every
training type: negative sampling (column 0 positive, ``k`` sampled negatives), 1vsAll (one positive
per row, every other entity a negative: the paper's TuckER rows) and KvsAll (several positives).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional as F

Reduction = Literal["sum", "mean"]


def uniform_negative_weights(
    positives: torch.Tensor, negative_reduction: Reduction
) -> torch.Tensor:
    """Weight of each negative: 1 (``sum``: eq. 6 sums over the ``v`` negatives, LibKGE) or
    ``1/v_b`` (``mean``: Sun et al. 2019 average them). ``positives``: ``(B, M)`` bool ->
    ``(B, M)`` float, 0 on positives."""
    neg = (~positives).to(torch.get_default_dtype())
    if negative_reduction == "mean":
        neg = neg / neg.sum(dim=1, keepdim=True).clamp(min=1.0)
    return neg


def ns(
    scores: torch.Tensor,
    positives: torch.Tensor,
    *,
    margin: float = 0.0,
    negative_weights: torch.Tensor | None = None,
    negative_reduction: Reduction = "sum",
) -> torch.Tensor:
    """``sum_b [sum_{y in pos_b} -log σ(f(x_b, y) + γ) + sum_{y' in neg_b} w -log σ(-(f + γ))]``.

    Eq. 6 with ``p(C=1|x, y) = σ(f_θ(x, y))``; ``γ`` is the margin of distance models (RotatE's
    ``γ - d(h, t)``, LibKGE's BCE offset). The objective distribution is ``p_d(y|x)`` for uniform
    noise (Prop. 5) and eq. 9 in general.

    Args:
        scores: ``(B, M)`` scores of each row's candidates.
        positives: ``(B, M)`` bool, True for observed ``(x, y)``; the rest are negatives.
        margin: margin γ added to every score.
        negative_weights: ``(B, M)`` weights of the negatives (SANS, NS w/ Freq weighting);
            None: uniform, see ``negative_reduction``. Not differentiated.
        negative_reduction: ``sum`` (eq. 6, weight 1 per negative) or ``mean`` (weights
            ``1/v``).

    Returns:
        scalar sum over rows.
    """
    if negative_weights is None:
        negative_weights = uniform_negative_weights(positives, negative_reduction)
    logits = scores + margin
    pos_term = F.logsigmoid(logits).masked_fill(~positives, 0.0).sum()
    neg_term = (negative_weights.detach().masked_fill(positives, 0.0) * F.logsigmoid(-logits)).sum()
    return -(pos_term + neg_term)


def frequency_negative_weights(
    noise: torch.Tensor, positives: torch.Tensor, negative_reduction: Reduction
) -> torch.Tensor:
    """Importance weights of NS w/ Freq's *weighted* reading: uniform negatives reweighted by the
    noise probability ``p_n(y)`` of each candidate, normalized over a row's negatives to the same
    total as :func:`uniform_negative_weights` (``v`` for ``sum``, 1 for ``mean``).

    Args:
        noise: ``(B, M)`` non-negative noise probabilities ``p_n(y|x_b)`` of each candidate.
        positives: ``(B, M)`` bool.

    Returns:
        ``(B, M)`` weights, 0 on positives.
    """
    w = noise.masked_fill(positives, 0.0)
    total = uniform_negative_weights(positives, negative_reduction).sum(dim=1, keepdim=True)
    return w / w.sum(dim=1, keepdim=True).clamp(min=torch.finfo(w.dtype).tiny) * total


def ns_freq(
    scores: torch.Tensor,
    positives: torch.Tensor,
    *,
    noise: torch.Tensor | None,
    margin: float = 0.0,
    negative_reduction: Reduction = "sum",
) -> torch.Tensor:
    """NS w/ Freq, *weighted* reading (§3.1.2, eq. 9 with ``p_n`` = unigram frequency): uniform
    negatives importance-weighted by ``p_n`` (:func:`frequency_negative_weights`).

    The *sampled* reading (word2vec; what the paper's table 3 used, "unigram noise") draws the
    negatives from ``p_n`` instead and weights them uniformly: ``noise=None``, which is plain
    :func:`ns` (the sampler: :class:`embedlab.kge.sampling.NegativeSampler`). Both have eq. 9's
    objective distribution ``T_{x,y}^{-1} p_d(y|x)`` (table 1).

    Args and returns as :func:`ns`; ``noise``: ``(B, M)`` noise probabilities ``p_n`` of each
    candidate, or None when the negatives were drawn from ``p_n`` (sampled reading).
    """
    weights = (
        None if noise is None else frequency_negative_weights(noise, positives, negative_reduction)
    )
    return ns(
        scores,
        positives,
        margin=margin,
        negative_weights=weights,
        negative_reduction=negative_reduction,
    )
