"""Scores of ``(B, d)`` anchors against ALL ``(N, d)`` candidates for distance models, without a
``(B, N, d)`` tensor: ``scores[b, n] = -distance(anchor[b], tails[n])``.

Distances (:data:`DistanceKind`), with the epsilon semantics of ``transe.py`` / ``rotate.py``:

* ``l1``: ``sum_i |a_i - t_i|`` (TransE ``p_norm: 1``);
* ``l2``: ``sqrt(sum_i (a_i - t_i)^2 + eps)`` (TransE ``p_norm: 2``);
* ``rotate``: ``sum_c sqrt((a_re,c - t_re,c)^2 + (a_im,c - t_im,c)^2 + eps)`` over the ``d/2``
  complex coordinates, real parts first (RotatE).

:class:`DistanceScores` is a custom autograd Function. Forward walks candidate blocks of
:data:`COLS` rows (outer, ~1 MB of tails at d=500: stays in L2) and query blocks of :data:`ROWS`
rows (inner) and writes each ``(rows, cols)`` score block. Backward recomputes per block and
accumulates ``grad_anchor (B, d)`` and ONE ``grad_tails (N, d)`` buffer; ``l2`` needs no
recomputation at all: with ``w = g / dist`` its gradients are two matrix products
(``grad_a = rowsum(w) a - w t``, ``grad_t = colsum(w) t - w^T a``).

Block kernels. Measured on the 2-core Xeon (AVX-512) of this project's VMs, RotatE d=500 against
the 40943 WN18RR entities, forward only, per 6268 queries (the test split, both directions);
first three rows extrapolated from 256 queries, last row the whole filtered evaluation:

===============================================  ===========
plain torch ops per (256 x 64) block             ~700 s (several memory passes per block)
torch.cdist p=1 (L1, for comparison)             ~88 s
old checkpointed path (``fused=False``)          ~90 s (the issue)
torch.compile (inductor C++) 64 x 512 blocks     ~8.5 s (one fused AVX-512 loop; sqrt-bound)
whole filtered evaluation, compiled kernel       11.0 s (``benchmarks/distance_scoring.py``)
===============================================  ===========

so float32 CPU blocks go through ``torch.compile`` of the plain block functions (one fused loop
nest; the first call compiles, seconds, cached on disk by inductor). Rows are dynamic (any batch
size, one compilation), ``d`` and the 512 columns static: a kernel with dynamic ``d`` measured up
to 3.7x slower. Everything else (float64, GPU, ``EMBEDLAB_COMPILE=0``, or after a
compilation error, which warns once) runs the same block functions eagerly, in smaller blocks.
The ``l2`` forward keeps the exact difference formula: the matmul expansion
``|a|^2 + |t|^2 - 2 a.t`` has an absolute error ~ eps |a|^2, which swamps the small distances of
a trained model's best candidates; on a random model both float32 forms disagree with float64
ranks anyway (826 / 3134 exact, 270 / 3134 expansion: random distances concentrate within
float32 rounding), so that measurement cannot clear it. Its backward uses matrix products,
where cancellation only perturbs a gradient. bf16 autocast: inputs are cast to float32 and
autocast is disabled inside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch

from embedlab.compiling import Kernel, compile_enabled

DistanceKind = Literal["l1", "l2", "rotate"]
EPS = 1e-12  # as transe.py / rotate.py: the square root has no gradient at 0
ROWS, COLS = 64, 512  # compiled backward blocks: 64 x 512 x 500 floats recomputed, 1 MB of tails
FORWARD_ROWS = 128  # compiled forward blocks: a whole evaluation batch (102 rows at N = 40943)
EAGER_ELEMENTS = 2**18  # eager blocks: (rows, cols, d) intermediates of ~1 MB


def distance(kind: DistanceKind, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Distances of broadcastable ``(..., d)`` anchors and tails -> ``(...)`` (the last axis
    reduced), with the epsilon semantics above; shared by the all-candidates blocks here and
    the per-query candidate blocks of :mod:`~embedlab.kge.interactions.gathered_distance`."""
    if kind == "l1":
        return (a - t).abs().sum(-1)
    if kind == "l2":
        diff = a - t
        return (diff * diff).sum(-1).add(EPS).sqrt()
    half = a.shape[-1] // 2
    d_re, d_im = a[..., :half] - t[..., :half], a[..., half:] - t[..., half:]
    return (d_re * d_re + d_im * d_im).add(EPS).sqrt().sum(-1)


def _forward_block(kind: DistanceKind) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(r, d)`` anchors, ``(c, d)`` tails -> ``(r, c)`` distances."""

    def block(a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return distance(kind, a.unsqueeze(1), t.unsqueeze(0))  # (r, c, d) -> (r, c)

    return block


def l1_weights(diff: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``sign(diff) * g`` (0 where ``diff == 0``, as autograd's ``abs``) as two selects: the
    compiled backward block runs 2.5x faster than with ``sign() *`` (the 64 x 512 x 512 l1
    block, 1 thread: 5.3 ms against 13.1 ms), with identical values."""
    return torch.where(diff > 0, g, torch.where(diff < 0, -g, 0.0))


def _backward_block(
    kind: DistanceKind,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``(r, d)`` anchors, ``(c, d)`` tails, ``(r, c)`` weights ``g`` -> gradients of
    ``sum(g * distance)`` w.r.t. anchors ``(r, d)`` and tails ``(c, d)`` (l1 and rotate)."""

    def l1(a: torch.Tensor, t: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = l1_weights(a.unsqueeze(1) - t.unsqueeze(0), g.unsqueeze(2))  # (r, c, d)
        return s.sum(1), -s.sum(0)

    def rotate(
        a: torch.Tensor, t: torch.Tensor, g: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k = a.shape[1] // 2
        d_re = a[:, None, :k] - t[None, :, :k]  # (r, c, k)
        d_im = a[:, None, k:] - t[None, :, k:]
        w = g.unsqueeze(2) / (d_re * d_re + d_im * d_im).add(EPS).sqrt()  # (r, c, k)
        w_re, w_im = w * d_re, w * d_im
        grad_a = torch.cat([w_re.sum(1), w_im.sum(1)], dim=1)  # (r, d)
        grad_t = -torch.cat([w_re.sum(0), w_im.sum(0)], dim=1)  # (c, d)
        return grad_a, grad_t

    if kind == "l2":
        raise ValueError("l2 gradients are matrix products, not blocks")
    return {"l1": l1, "rotate": rotate}[kind]


def _use_compile(x: torch.Tensor) -> bool:
    """Whether the blocks of ``x`` run compiled (and so get the compiled block sizes)."""
    return compile_enabled(x) and x.dtype == torch.float32


# rows dynamic (anchors, and the backward's weights), d and the padded 512 columns static
_KERNELS = {
    ("forward", kind): Kernel(_forward_block(kind), min_elements=0, dynamic_args=(0,))
    for kind in ("l1", "l2", "rotate")
} | {
    ("backward", kind): Kernel(_backward_block(kind), min_elements=0, dynamic_args=(0, 2))
    for kind in ("l1", "rotate")
}


def _run(direction: str, kind: DistanceKind, *args: torch.Tensor) -> Any:
    """The block function of ``direction`` (``forward``/``backward``): compiled on float32 CPU
    tensors, eager otherwise or after a failed compilation (:class:`embedlab.compiling.Kernel`)."""
    return _KERNELS[(direction, kind)](*args)


def _block_sizes(x: torch.Tensor, num_rows: int, max_rows: int) -> tuple[int, int]:
    """(rows, cols) of one block. Compiled kernels: ``num_rows`` in equal blocks of at most
    ``max_rows`` (dynamic; 102 -> 2 x 51 at 64, no padding) and COLS columns (static; the edge
    block is zero-padded, :func:`_block`). Eager ops materialize ``(rows, cols, d)``:
    ~EAGER_ELEMENTS."""
    if _use_compile(x):
        blocks = -(-max(1, num_rows) // max_rows)
        return -(-max(1, num_rows) // blocks), COLS
    rows = 16
    return rows, max(1, EAGER_ELEMENTS // (rows * max(1, x.shape[1])))


def _block(x: torch.Tensor, start: int, size: int, pad: bool) -> torch.Tensor:
    """``x[start : start + size]``, zero-padded to ``size`` rows when ``pad`` (static shapes;
    padded rows carry zero gradient weights, so they contribute nothing)."""
    part = x[start : start + size]
    if not pad or len(part) == size:
        return part
    return torch.cat([part, part.new_zeros((size - len(part), *part.shape[1:]))])


def _block_grid(
    x: torch.Tensor, num_rows: int, num_cols: int, max_rows: int = ROWS
) -> Iterator[tuple[slice, slice, int, bool]]:
    """Blocks, candidates outer: ``(row slice, col slice, cols, pad)``."""
    rows, cols = _block_sizes(x, num_rows, max_rows)
    pad = _use_compile(x)
    for j in range(0, num_cols, cols):
        for i in range(0, num_rows, rows):
            yield slice(i, i + rows), slice(j, j + cols), cols, pad


def pairwise_distances(
    kind: DistanceKind, anchors: torch.Tensor, tails: torch.Tensor
) -> torch.Tensor:
    """``(B, d)`` anchors, ``(N, d)`` tails -> ``(B, N)`` distances (no autograd), in blocks."""
    out = anchors.new_empty(len(anchors), len(tails))  # (B, N)
    for r, c, cols, pad in _block_grid(anchors, len(anchors), len(tails), FORWARD_ROWS):
        a = anchors[r]  # (<= FORWARD_ROWS, d): dynamic rows, never padded
        t = _block(tails, c.start, cols, pad)
        block = _run("forward", kind, a, t)  # (rows, cols)
        out[r, c] = block[:, : out.shape[1] - c.start]
    return out


def _l2_grads(
    anchors: torch.Tensor, tails: torch.Tensor, dist: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``sum(g * dist)`` for l2: ``w = g / dist`` (B, N); two matrix products."""
    w = g / dist  # (B, N)
    grad_a = w.sum(1, keepdim=True) * anchors - w @ tails  # (B, d)
    grad_t = w.sum(0).unsqueeze(1) * tails - w.T @ anchors  # (N, d)
    return grad_a, grad_t


def _blocked_grads(
    kind: DistanceKind, anchors: torch.Tensor, tails: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``sum(g * dist)``: recomputed per block, one ``(N, d)`` tail buffer."""
    grad_a = torch.zeros_like(anchors)  # (B, d)
    grad_t = torch.zeros_like(tails)  # (N, d)
    for r, c, cols, pad in _block_grid(anchors, len(anchors), len(tails)):
        a = anchors[r]  # (<= ROWS, d)
        t = _block(tails, c.start, cols, pad)
        w = _block(g[r, c].T, 0, cols, pad).T  # (<= ROWS, cols), zero-padded columns
        ga, gt = _run("backward", kind, a, t, w.contiguous())
        grad_a[r] += ga
        grad_t[c] += gt[: len(grad_t[c])]
    return grad_a, grad_t


class DistanceScores(torch.autograd.Function):
    """``scores = -distance(anchors[b], tails[n])``: ``(B, d)``, ``(N, d)`` -> ``(B, N)``."""

    @staticmethod
    def forward(
        ctx: Any, kind: DistanceKind, anchors: torch.Tensor, tails: torch.Tensor
    ) -> torch.Tensor:
        scores = pairwise_distances(kind, anchors, tails).neg_()  # (B, N)
        ctx.kind = kind
        # l2's backward reads the distances back from the saved (version-checked) output
        ctx.save_for_backward(anchors, tails, scores if kind == "l2" else None)
        return scores

    @staticmethod
    def backward(ctx: Any, grad_scores: torch.Tensor) -> tuple[None, torch.Tensor, torch.Tensor]:
        anchors, tails, scores = ctx.saved_tensors
        g = -grad_scores.contiguous()  # d(scores) = -d(dist)
        if ctx.kind == "l2":
            grad_a, grad_t = _l2_grads(anchors, tails, -scores, g)
        else:
            grad_a, grad_t = _blocked_grads(ctx.kind, anchors, tails, g)
        return None, grad_a, grad_t


def distance_scores(kind: DistanceKind, anchors: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
    """``(B, d)`` anchors and ``(N, d)`` tails -> ``(B, N)`` float32 (or float64) scores
    ``-distance``, differentiable in both; computed outside autocast in float32 (bf16 inputs
    are cast up) so that a bf16 training step scores exactly as fp32."""
    if anchors.dtype != torch.float64:
        anchors, tails = anchors.float(), tails.float()
    with torch.autocast(anchors.device.type, enabled=False):
        out = DistanceScores.apply(kind, anchors.contiguous(), tails.contiguous())
    assert isinstance(out, torch.Tensor)
    return out
