"""The unweighted Lp penalty of a whole table in one pass each way.

``scale / p * sum |w|^p`` over a ``(N, d)`` table is LibKGE's unweighted ``lp`` regularizer, which
the KGE models apply to the entity table twice per batch (subject and object roles). Written as
``w.abs().pow(p).sum()`` it costs autograd three elementwise passes over the table forward and two
backward, per role; on WN18RR (40,943 x 256 fp32) that was a large share of a bf16 1vsAll step
(docs/kge.md). Here the forward is one reduction (``dot`` for p = 2, ``vector_norm`` otherwise)
and the backward ``scale * g * sign(w) |w|^(p-1)``: one elementwise pass for p = 2 (``w * c``),
two for p = 3 (``w * |w| * c``), a few for other p.
"""

from __future__ import annotations

from typing import Any

import torch


class _WholeTableLp(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, p: float, scale: float) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.p, ctx.scale = p, scale
        with torch.autocast(weight.device.type, enabled=False):  # fp32 sum under bf16 autocast
            flat = weight.reshape(-1)
            total = torch.dot(flat, flat) if p == 2 else torch.linalg.vector_norm(flat, ord=p) ** p
        return total * (scale / p)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (weight,) = ctx.saved_tensors
        g = grad * ctx.scale
        if ctx.p == 2:
            return weight * g, None, None
        if ctx.p == 3:
            return weight * weight.abs() * g, None, None
        if ctx.p == 1:
            return weight.sign() * g, None, None
        # sign(w) |w|^(p-1): finite (0) at w = 0 also for 1 < p < 2, where |w|^(p-2) is inf
        return weight.sign() * weight.abs().pow(ctx.p - 1) * g, None, None


def whole_table_lp(weight: torch.Tensor, *, p: float, scale: float) -> torch.Tensor:
    """``scale / p * sum(|weight|^p)`` (a 0-dim tensor of ``weight``'s dtype) with the gradient
    ``scale * sign(weight) * |weight|^(p-1)`` (0 at 0, as autograd's ``abs`` for p = 1).

    Args:
        weight: the table, any shape (``(N, d)`` for a lookup table).
        p: the norm's order, ``p >= 1``.
        scale: the regularization weight (LibKGE's ``weight``).

    Raises:
        ValueError: ``p < 1``.
    """
    if p < 1:
        raise ValueError(f"Lp penalty needs p >= 1, got {p}")
    out = _WholeTableLp.apply(weight, float(p), float(scale))
    assert isinstance(out, torch.Tensor)
    return out
