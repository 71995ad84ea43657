"""The bf16 (autocast) training pass of the blocked SCE kernel (:mod:`embedlab.losses.sce`).

Operands arrive cast to bf16 once per batch: queries ``q (B, d)``, candidates ``c (N, d)``. For
each block of ``b`` query rows the score product ``q_blk @ c.T`` runs in bf16 (oneDNN/AMX,
fp32 accumulation, output rounded to bf16); :func:`_exp_rows` then makes one compiled pass per
row, with the row in cache (inductor fuses the max, sum-of-exponentials and output loops over
one outer loop; a per-row ``(b,)`` expression or the ``onehot(y)`` compare inside the kernel
would split it into three passes over the whole block), and writes the weighted softmax
``w_b * (exp(s - m_b) / Σ exp(s - m_b) - λ / N)`` in bf16 straight into the batch's gradient
matrix ``G (B, N)``. The target column ``- (1 - λ) w_b`` and the per-row loss are then fixed up
from ``(b,)`` vectors (the target entry is recomputed in fp32 and rounded once, like the rest).
Both gradient products run once over the whole batch: ``G @ c`` and ``(q.T @ G).T`` (the
transposed form is the faster oneDNN layout here; same bf16 values as ``G.T @ q``).
"""

from __future__ import annotations

import torch

from embedlab.compiling import Kernel


def _exp_rows(
    scores: torch.Tensor, weights: torch.Tensor, lam: float, out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One score block ``scores (b, N)`` -> row max ``m (b,)``, ``Σ_i exp(s_i - m) (b,)`` and
    the row sums ``Σ_i s_i (b,)`` (used for λ > 0; zeros otherwise), all fp32; writes
    ``out (b, N) = w_b * (exp(s - m_b) / Σ exp(s - m_b) - λ / N)`` rounded to ``out.dtype``."""
    s = scores.float()  # (b, N)
    m = s.amax(dim=1, keepdim=True)  # (b, 1)
    sum_exp = torch.exp(s - m).sum(dim=1, keepdim=True)  # (b, 1)
    w = weights.unsqueeze(1)  # (b, 1)
    grad = torch.exp(s - m) * (w / sum_exp)  # (b, N)
    if lam:
        grad = grad - (lam / s.shape[1]) * w
    out.copy_(grad)
    row_sums = s.sum(dim=1) if lam else torch.zeros_like(weights)
    return m.squeeze(1), sum_exp.squeeze(1), row_sums


_EXP_ROWS = Kernel(_exp_rows)


def blocked_sce_low(
    q: torch.Tensor,
    c: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    lam: float,
    block_rows: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``q (B, d)``, ``c (N, d)`` in bf16, ``targets (B,)``, fp32 ``weights (B,)`` ->
    (float64 loss sum ``Σ_b w_b * sce_ls_b``, fp32 ``∂/∂q (B, d)``, bf16 ``(∂/∂c).T (d, N)``;
    :func:`scale_candidate_grad` turns the last into the fp32 ``(N, d)`` gradient).

    ``sce_ls_b = lse_b - (1 - λ) s_{b,y_b} - λ mean_i s_{b,i}`` (eq. 17; λ = 0: eq. 5), with
    ``lse_b = m_b + log Σ exp(s - m_b)`` from the bf16 scores in fp32.
    """
    num = c.shape[0]
    grad = q.new_empty((len(q), num))  # (B, N) bf16: w * (softmax - targets)
    total = torch.zeros((), dtype=torch.float64, device=q.device)
    for start in range(0, len(q), block_rows):
        stop = min(start + block_rows, len(q))
        y, w = targets[start:stop], weights[start:stop]  # (b,), (b,)
        scores = q[start:stop] @ c.T  # (b, N) bf16
        out = grad[start:stop]  # (b, N) view
        m, sum_exp, row_sums = _EXP_ROWS(scores, w, lam, out)  # (b,) each
        rows = torch.arange(stop - start, device=q.device)
        s_y = scores[rows, y].float()  # (b,)
        per_row = m + sum_exp.log() - (1.0 - lam) * s_y
        if lam:
            per_row = per_row - lam * (row_sums / num)
        total += (w * per_row).sum(dtype=torch.float64)
        g_y = torch.exp(s_y - m) * (w / sum_exp)  # the target entries, as the kernel wrote them
        if lam:
            g_y = g_y - (lam / num) * w
        out[rows, y] = (g_y - (1.0 - lam) * w).to(out.dtype)
    grad_q = (grad @ c).float()  # (B, d)
    grad_c_t = q.T.contiguous() @ grad  # (d, N)
    return total, grad_q, grad_c_t


def _scale_transposed(grad_t: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """bf16 ``grad_t (d, N)``, fp32 scalar -> fp32 contiguous ``(N, d) = grad_t.T * scale``
    (one compiled pass: transposed read, cast, scale; the same values as cast-then-scale)."""
    return (grad_t.T.float() * scale).contiguous()


scale_candidate_grad = Kernel(_scale_transposed)
