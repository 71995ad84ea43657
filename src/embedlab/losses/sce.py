"""Softmax cross-entropy over all candidates (paper 002, eq. 5), with the two SCE variants of the
paper folded into one blocked kernel: label smoothing (eq. 17) and per-example weights (eq. 16).

Two entry points compute the same value:

* :func:`sce` takes a score matrix ``(B, N)``: the pure loss, usable with any model.
* :func:`sce_tail_linear` takes queries ``(B, d)`` and candidates ``(N, d)`` of a tail-linear
  interaction (scores = ``queries @ candidates.T``) and never materializes the full ``(B, N)``
  matrix: it walks row blocks that fit in cache, computing scores, log-sum-exp and both gradients
  in one pass. On a 2-core CPU with ~4 GB/s of memory bandwidth the full matrix (168 MB for 1,024
  WN18RR queries) costs more in memory traffic than the matrix products; see benchmarks/.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from embedlab.compiling import Kernel
from embedlab.losses.sce_low import blocked_sce_low, scale_candidate_grad

BLOCK_BYTES = 8 * 2**20  # one (rows, N) float32 score block, sized for the last-level cache
LOW_BLOCK_FACTOR = 4  # bf16: 4x the rows per score block (AMX products want taller blocks)


def sce(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed softmax cross-entropy ``sum_b -sum_y p_d(y|x_b) log softmax(scores_b)_y`` (eqs. 4-5).

    Args:
        scores: ``(B, N)`` logits of every candidate for each query.
        targets: ``(B,)`` int64 index of the true candidate (eq. 5), or ``(B, N)`` float target
            distribution ``p_d(y|x_b)`` whose rows sum to 1 (eq. 4; KvsAll).

    Returns:
        scalar, the *sum* over the batch (the trainer divides by the number of triples, as
        LibKGE's 1vsAll does with both directions).
    """
    return F.cross_entropy(scores, targets, reduction="sum")


def _softmax_grad(
    scores: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    lam: float,
    grad_dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One score block ``(b, N)`` -> weighted per-row loss ``(b,)`` (eq. 17 times ``w_b``) and
    its gradient w.r.t. the scores ``(b, N)`` in ``grad_dtype``, computed in at least fp32:
    ``w_b * (softmax_b - (1 - λ) onehot(y_b) - λ / N)``. Compiled (:mod:`embedlab.compiling`):
    the log-sum-exp, softmax and gradient passes fuse into one loop nest over the block."""
    s = scores.to(torch.promote_types(scores.dtype, torch.float32))
    num = s.shape[1]
    lse = torch.logsumexp(s, dim=1)  # (b,)
    per_row = lse - (1.0 - lam) * s.gather(1, targets.unsqueeze(1)).squeeze(1)
    if lam:
        per_row = per_row - lam * s.mean(dim=1)
    hit = torch.arange(num, device=s.device).unsqueeze(0) == targets.unsqueeze(1)  # (b, N)
    probs = torch.exp(s - lse.unsqueeze(1)) - (1.0 - lam) * hit
    if lam:
        probs = probs - lam / num
    return weights * per_row, (probs * weights.unsqueeze(1)).to(grad_dtype)


_SOFTMAX_GRAD = Kernel(_softmax_grad)


def _blocked_sce(
    q: torch.Tensor,
    c: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    lam: float,
    block_rows: int,
    with_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Full-precision pass (and any pass without gradients): ``q (B, d)``, ``c (N, d)`` ->
    (float64 loss sum, ``∂/∂q (B, d)``, ``∂/∂c (N, d)``; None without ``with_grad``), both
    gradient products per block. Scores of bf16 operands (no-grad calls under autocast) are
    softmaxed in fp32."""
    dtype = torch.promote_types(q.dtype, torch.float32)  # fp32, or fp64 for fp64 inputs
    grad_q = torch.empty(q.shape, dtype=dtype, device=q.device) if with_grad else None
    grad_c = torch.zeros(c.shape, dtype=dtype, device=c.device) if with_grad else None
    total = torch.zeros((), dtype=torch.float64, device=q.device)
    with torch.autocast(q.device.type, enabled=False):
        for start in range(0, len(q), block_rows):
            qb = q[start : start + block_rows]  # (b, d)
            y = targets[start : start + block_rows]  # (b,)
            w = weights[start : start + block_rows]  # (b,)
            row_loss, probs = _SOFTMAX_GRAD(qb @ c.T, y, w, lam, dtype)  # (b,), (b, N)
            total += row_loss.sum(dtype=torch.float64)
            if grad_q is not None and grad_c is not None:
                torch.mm(probs, c, out=grad_q[start : start + block_rows])  # (b, d)
                grad_c.addmm_(probs.T, qb)  # (N, d)
    return total, grad_q, grad_c


class _BlockedSce(torch.autograd.Function):
    """Forward computes the loss and both gradients block by block; backward scales them.

    Per row ``b``: ``w_b * (lse_b - (1 - λ) s_{b,y_b} - λ * mean_i s_{b,i})``, which is
    ``w_b * sce_ls`` (eq. 17 with ``λ = label_smoothing``; ``λ = 0``: eq. 5; weights: eq. 16).
    """

    @staticmethod
    def forward(
        ctx: Any,
        queries: torch.Tensor,
        candidates: torch.Tensor,
        targets: torch.Tensor,
        weights: torch.Tensor,
        label_smoothing: float,
        block_rows: int,
    ) -> torch.Tensor:
        lam = label_smoothing  # λ of eq. 17
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        # bf16 autocast: operands cast ONCE per call (autocast would re-cast the (N, d)
        # candidates for every block and product unless they are a leaf); training runs
        # sce_low's pass (bf16 products with fp32 accumulation, fp32 softmax, one bf16 (B, N)
        # gradient matrix, both gradient products once per batch).
        low = _product_dtype(queries)
        q_mm, c_mm = queries.to(low), candidates.to(low)
        grad_q: torch.Tensor | None = None
        grad_c: torch.Tensor | None = None
        ctx.transposed = need_grad and low != queries.dtype  # grad_c: bf16 (d, N)
        if ctx.transposed:
            total, grad_q, grad_c = blocked_sce_low(
                q_mm, c_mm, targets, weights, lam, block_rows * LOW_BLOCK_FACTOR
            )
        else:
            total, grad_q, grad_c = _blocked_sce(
                q_mm, c_mm, targets, weights, lam, block_rows, need_grad
            )
        ctx.save_for_backward(
            grad_q if grad_q is not None else queries.new_empty(0),
            grad_c if grad_c is not None else candidates.new_empty(0),
        )
        return total.to(queries.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        grad_q, grad_c = ctx.saved_tensors
        if ctx.transposed:  # bf16 (d, N) -> fp32 (N, d), scaled
            return grad_out * grad_q, scale_candidate_grad(grad_c, grad_out), None, None, None, None
        return grad_out * grad_q, grad_out * grad_c, None, None, None, None


def _product_dtype(x: torch.Tensor) -> torch.dtype:
    """Operand dtype of the blocked products: autocast's dtype when autocast is on for ``x``'s
    device and ``x`` is fp32, else ``x.dtype``."""
    kind = x.device.type
    if x.dtype == torch.float32 and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return x.dtype


def sce_tail_linear(
    queries: torch.Tensor,
    candidates: torch.Tensor,
    targets: torch.Tensor,
    *,
    label_smoothing: float = 0.0,
    weights: torch.Tensor | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> torch.Tensor:
    """``sum_b w_b * sce_ls(queries @ candidates.T, targets, λ)`` without the ``(B, N)`` matrix.

    Args:
        queries: ``(B, d)`` query vectors (e.g. ``ComplEx.query(h, r)``).
        candidates: ``(N, d)`` embeddings of every candidate answer.
        targets: ``(B,)`` int64 index of the true candidate.
        label_smoothing: label-smoothing weight λ of eq. 17 (0: plain SCE, eq. 5).
        weights: ``(B,)`` per-example weights (eq. 16, backward correction); None: all 1.
        block_bytes: size of one float32 score block; rows per block = block_bytes / (4 N).

    Returns:
        scalar sum over the batch; differentiable w.r.t. ``queries`` and ``candidates``.
    """
    block_rows = max(1, block_bytes // (4 * candidates.shape[0]))
    if weights is None:
        weights = queries.new_ones(len(queries))
    out: torch.Tensor = _BlockedSce.apply(
        queries, candidates, targets, weights.detach(), float(label_smoothing), block_rows
    )
    return out
