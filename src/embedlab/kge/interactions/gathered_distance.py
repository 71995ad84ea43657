"""Scores of each query's anchor against its OWN candidates for distance models (negative
sampling), without a ``(Q, k, d)`` tensor of candidate rows:
``scores[q, j] = -distance(anchor[q], table[candidates[q, j]])``.

Negative sampling as RotatE's code runs it (per-triple negatives, WN18RR: 1,024 per side, d =
500, batch 512) gathers ``(Q, 1 + k, d)`` candidate rows: 1 GB per side per batch, and the
generic path (:func:`~embedlab.kge.interactions.base.score_candidates`) then walks it one query
row at a time (a row is already ~2 MB), with gradient checkpointing. Measured on the 2-core VM
(WN18RR TransE-L1 ``transe-ns.yaml``): 61 training rows/s, 38 batches in a 10-minute budget.

Here the gather happens inside one compiled loop per block of query rows (inductor reads
``table[candidates[q, j], i]`` indirectly, no candidate copy), with the distance functions and
epsilon semantics of :mod:`~embedlab.kge.interactions.distance_kernels`. Backward recomputes
per block: the candidate-row gradients ``(rows, k, d)`` of one block (~16 MB) come from one
elementwise loop, the anchor gradient is minus their sum over ``k``, and they are added into
ONE dense ``(N, d)`` table gradient with ``index_add_`` (what ``nn.Embedding``'s dense backward does). Float64, GPU and
``EMBEDLAB_COMPILE=0`` run the same block functions eagerly, in ~1 MB blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from embedlab.compiling import Kernel, compile_enabled
from embedlab.kge.interactions.distance_kernels import EPS, DistanceKind, distance, l1_weights

FORWARD_CANDIDATES = 2**15  # compiled forward block: rows * k candidate rows (~32 rows at k=1025)
BACKWARD_CANDIDATES = 2**13  # compiled backward block: its (rows, k, d) gradient is ~16 MB at d=500
EAGER_ELEMENTS = 2**18  # eager blocks: (rows, k, d) intermediates of ~1 MB


def _forward_block(kind: DistanceKind) -> Callable[..., torch.Tensor]:
    """``(r, d)`` anchors, ``(N, d)`` table, ``(r, k)`` ids -> ``(r, k)`` distances."""

    def block(a: torch.Tensor, table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return distance(kind, a.unsqueeze(1), table[ids])  # gather fused when compiled

    return block


def _backward_block(kind: DistanceKind) -> Callable[..., torch.Tensor]:
    """``(r, d)`` anchors, ``(N, d)`` table, ``(r, k)`` ids, ``(r, k)`` weights ``g`` ->
    gradient of ``sum(g * distance)`` w.r.t. the gathered rows ``(r, k, d)``; the anchors'
    is minus its sum over ``k``, reduced outside (a reduction over the middle axis inside the
    gathering loop compiled to scalar code: 2.7x slower than this elementwise kernel plus
    ``sum(1)``, measured at WN18RR size)."""

    def block(
        a: torch.Tensor, table: torch.Tensor, ids: torch.Tensor, g: torch.Tensor
    ) -> torch.Tensor:
        diff = a.unsqueeze(1) - table[ids]  # (r, k, d)
        if kind == "l1":
            s = l1_weights(diff, g.unsqueeze(2))
        elif kind == "l2":
            dist = (diff * diff).sum(-1, keepdim=True).add(EPS).sqrt()  # (r, k, 1)
            s = diff * (g.unsqueeze(2) / dist)
        else:
            half = a.shape[1] // 2
            d_re, d_im = diff[..., :half], diff[..., half:]
            w = g.unsqueeze(2) / (d_re * d_re + d_im * d_im).add(EPS).sqrt()  # (r, k, d/2)
            s = torch.cat([w * d_re, w * d_im], dim=2)
        return -s

    return block


# rows dynamic (anchors, ids, weights); k, d and the table static (one compilation per dataset)
_KERNELS = {
    ("forward", kind): Kernel(_forward_block(kind), min_elements=0, dynamic_args=(0, 2))
    for kind in ("l1", "l2", "rotate")
} | {
    ("backward", kind): Kernel(_backward_block(kind), min_elements=0, dynamic_args=(0, 2, 3))
    for kind in ("l1", "l2", "rotate")
}


def _rows(anchors: torch.Tensor, ids: torch.Tensor, compiled_candidates: int) -> tuple[int, bool]:
    """Query rows per block and whether the block runs compiled (float32 CPU, enough work)."""
    k, d = ids.shape[1], anchors.shape[1]
    compiled = compile_enabled(anchors) and anchors.numel() * k >= EAGER_ELEMENTS
    budget = compiled_candidates if compiled else max(1, EAGER_ELEMENTS // max(1, d))
    return max(1, budget // max(1, k)), compiled


def _call(direction: str, kind: DistanceKind, compiled: bool, *args: torch.Tensor) -> Any:
    kernel = _KERNELS[(direction, kind)]
    return kernel(*args) if compiled else kernel.fn(*args)


class GatheredDistanceScores(torch.autograd.Function):
    """``-distance(anchors[q], table[ids[q, j]])``: ``(Q, d)``, ``(N, d)``, ``(Q, k)`` -> ``(Q, k)``."""

    @staticmethod
    def forward(
        ctx: Any, kind: DistanceKind, anchors: torch.Tensor, table: torch.Tensor, ids: torch.Tensor
    ) -> torch.Tensor:
        rows, compiled = _rows(anchors, ids, FORWARD_CANDIDATES)
        out = anchors.new_empty(ids.shape)  # (Q, k)
        for i in range(0, len(anchors), rows):
            blk = slice(i, i + rows)
            out[blk] = _call("forward", kind, compiled, anchors[blk], table, ids[blk])
        ctx.kind = kind
        ctx.save_for_backward(anchors, table, ids)
        return out.neg_()

    @staticmethod
    def backward(
        ctx: Any, grad_scores: torch.Tensor
    ) -> tuple[None, torch.Tensor, torch.Tensor, None]:
        anchors, table, ids = ctx.saved_tensors
        g = -grad_scores.contiguous()  # d(scores) = -d(distance)
        rows, compiled = _rows(anchors, ids, BACKWARD_CANDIDATES)
        grad_a = torch.empty_like(anchors)  # (Q, d)
        grad_table = torch.zeros_like(table)  # (N, d), dense as nn.Embedding's backward
        for i in range(0, len(anchors), rows):
            blk = slice(i, i + rows)
            gt = _call("backward", ctx.kind, compiled, anchors[blk], table, ids[blk], g[blk])
            grad_a[blk] = gt.sum(1).neg_()  # (rows, k, d) -> (rows, d)
            grad_table.index_add_(0, ids[blk].reshape(-1), gt.reshape(-1, table.shape[1]))
        return None, grad_a, grad_table, None


def gathered_distance_scores(
    kind: DistanceKind, anchors: torch.Tensor, table: torch.Tensor, ids: torch.Tensor
) -> torch.Tensor:
    """Scores ``-distance`` of each anchor against its own candidate rows of ``table``.

    Args:
        kind: ``l1``/``l2`` (TransE ``p_norm`` 1/2) or ``rotate`` (RotatE, real parts first).
        anchors: ``(Q, d)`` (TransE ``h + r``, RotatE ``h ∘ r``); table: ``(N, d)`` candidate
            embeddings (no dropout); ids: ``(Q, k)`` int64 row ids of each query's candidates.

    Returns:
        ``(Q, k)`` float32 (float64 for float64 inputs), differentiable w.r.t. ``anchors`` and
        ``table``; computed outside autocast (bf16 inputs are cast up), as
        :func:`~embedlab.kge.interactions.distance_kernels.distance_scores`.

    Raises:
        IndexError: an id outside ``[0, N)`` (eager path; the compiled gather checks too).
    """
    if anchors.dtype != torch.float64:
        anchors, table = anchors.float(), table.float()
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(table)):
        raise IndexError(f"candidate ids must lie in [0, {len(table)})")
    with torch.autocast(anchors.device.type, enabled=False):
        out = GatheredDistanceScores.apply(kind, anchors.contiguous(), table.contiguous(), ids)
    assert isinstance(out, torch.Tensor)
    return out
