"""Interaction protocols and scoring against all candidates, written once (CONVENTIONS.md #1).

An interaction scores broadcastable ``h, r, t`` with ``score(h, r, t) -> (...)`` (the last axis is
the embedding axis). Two families have a fast path:

* tail-linear (DistMult, ComplEx, RESCAL, TuckER): ``query(h, r)`` with
  ``score(h, r, t) == (query(h, r) * t).sum(-1)``; all candidates = one matrix product;
* tail-distance (TransE, RotatE): ``anchor(h, r)`` and ``distance(a, t)`` with
  ``score(h, r, t) == -distance(anchor(h, r), t)``; the anchor is computed once per query and
  compared with all candidates by the blocked autograd kernel of
  :mod:`~embedlab.kge.interactions.distance_kernels` when the interaction names its distance
  (``distance_kind``: TransE ``l1``/``l2``, RotatE ``rotate``), else in cache-sized candidate
  blocks recomputed in backward (gradient checkpointing); no ``(B, N, d)`` tensor is ever kept.

Interactions hold no embeddings. TuckER alone owns a parameter (its core tensor W, shared by all
relations, part of the scoring function in Balazevic et al. 2019), so interactions are
``nn.Module``s and the model registers them as a submodule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch.utils.checkpoint import checkpoint

from embedlab.kge.interactions.distance_kernels import DistanceKind, distance_scores

BLOCK_ELEMENTS = 2**18  # elements of one (rows, cols, d) intermediate: ~1 MB of float32


@runtime_checkable
class Interaction(Protocol):
    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...

    def relation_dim(self, dim: int) -> int:
        """Width of a relation row for entity width ``dim``."""
        ...


@runtime_checkable
class TailLinearInteraction(Interaction, Protocol):
    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class TailDistanceInteraction(Interaction, Protocol):
    def anchor(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor: ...

    def distance(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...


def distance_kind(interaction: TailDistanceInteraction) -> DistanceKind | None:
    """The distance an interaction declares (``distance_kind`` attribute) for the fused
    all-candidates kernel, or None (generic checkpointed blocks)."""
    kind: DistanceKind | None = getattr(interaction, "distance_kind", None)
    return kind


def checkpointed(fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
    """``fn(*args)``; under autograd its intermediates are recomputed in backward instead of
    stored (gradient checkpointing), so a block's ``(rows, cols, d)`` tensors never outlive it."""
    if torch.is_grad_enabled() and any(a.requires_grad for a in args):
        out = checkpoint(fn, *args, use_reentrant=False)
        assert isinstance(out, torch.Tensor)
        return out
    return fn(*args)


def score_candidates(
    interaction: TailDistanceInteraction, anchors: torch.Tensor, candidates: torch.Tensor
) -> torch.Tensor:
    """Scores of ``(Q, d_a)`` anchors against per-row candidates ``(Q, k, d)`` -> ``(Q, k)``.

    Negative sampling's inner loop for distance models, in row blocks whose ``(rows, k, d)``
    intermediate stays about :data:`BLOCK_ELEMENTS`.
    """

    def fn(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return -interaction.distance(a.unsqueeze(1), c)  # (q, 1, d) vs (q, k, d) -> (q, k)

    rows = max(1, BLOCK_ELEMENTS // max(1, candidates.shape[1] * candidates.shape[2]))
    if rows >= len(anchors):
        return fn(anchors, candidates)
    blocks = zip(anchors.split(rows), candidates.split(rows), strict=True)
    return torch.cat([checkpointed(fn, a, c) for a, c in blocks])


def score_all_tails(
    interaction: Interaction,
    h: torch.Tensor,
    r: torch.Tensor,
    tails: torch.Tensor,
    *,
    fused: bool = True,
) -> torch.Tensor:
    """Score each ``(h_b, r_b)`` against every candidate tail.

    Args:
        h: ``(B, d)`` head embeddings; r: ``(B, d_r)`` relation embeddings;
        tails: ``(N, d)`` candidate tail embeddings.

    Returns:
        ``(B, N)`` scores. Tail-linear: one matrix product ``query(h, r) @ tails.T``;
        tail-distance: the fused kernel (:func:`distance_scores`, float32) when the interaction
        declares its ``distance_kind`` and ``fused`` (False: the older checkpointed candidate
        blocks, kept for benchmarks), else anchors against checkpointed candidate blocks;
        otherwise broadcast ``(B, 1, d)`` against ``(1, N, d)``.
    """
    if isinstance(interaction, TailLinearInteraction):
        return interaction.query(h, r) @ tails.T  # (B, d) @ (d, N) -> (B, N)
    if isinstance(interaction, TailDistanceInteraction):
        anchors = interaction.anchor(h, r)  # (B, d)
        kind = distance_kind(interaction)
        if fused and kind is not None:
            return distance_scores(kind, anchors, tails)  # (B, N)

        def fn(cand: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
            return -interaction.distance(a.unsqueeze(0), cand.unsqueeze(1)).T  # (B, n)

        cols = max(1, BLOCK_ELEMENTS // max(1, len(anchors) * tails.shape[1]))
        # blocks over candidates; every block sees all anchors
        return torch.cat([checkpointed(fn, blk, anchors) for blk in tails.split(cols)], dim=1)
    return interaction.score(h.unsqueeze(1), r.unsqueeze(1), tails.unsqueeze(0))  # (B, N)
