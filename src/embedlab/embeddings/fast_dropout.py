"""Inverted dropout from 16-bit uniforms, used under bf16 autocast (issue 13, part 2).

1vsAll training drops out the whole entity table every batch (LibKGE's ``embed_all``): on
WN18RR that is 40,943 x 128 floats, and ``rand_like`` (one serial Mersenne-Twister draw per
element, on one core whatever the thread count) plus four eager passes (compare, cast, scale,
multiply) cost about as much as the bf16 score products. Here one 64-bit draw gives the
uniforms of four elements (``int64.random_`` over the full range, viewed as four ``int16``),
about 5x cheaper, and the mask and the product come from one compiled pass
(:mod:`embedlab.compiling`); backward is one pass over the saved ``bool`` mask.

Semantics (against :meth:`~embedlab.embeddings.template.EmbeddingLayer.dropout_mask`): each
element is kept independently with probability ``1 - p'``, ``p' = round(p * 2^16) / 2^16``
(``|p' - p| <= 2^-17``; fp32's ``rand_like`` quantizes ``p`` to ``2^-24``), and kept elements are
scaled by ``1 / (1 - p')``, so ``E[dropout(x)] = x`` exactly. The masks are drawn from torch's
default generator of the tensor's device (seeded and checkpointed like ``rand_like``), but are
not the same masks as ``rand_like`` would give for the same seed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from embedlab.compiling import Kernel

LEVELS = 2**16  # uniforms per element: 16 bits


def drop_threshold(p: float) -> tuple[int, float]:
    """``p`` -> (``int16`` threshold ``t``, scale): ``bits >= t`` keeps with probability
    ``1 - p'`` for ``bits`` uniform on ``[-2^15, 2^15)``; scale ``1 / (1 - p')``."""
    drop = round(p * LEVELS)  # number of the 2^16 levels that drop
    if not 0 <= drop < LEVELS:
        raise ValueError(f"dropout p={p} must be in [0, 1)")
    return drop - LEVELS // 2, LEVELS / (LEVELS - drop)


def uniform_bits(like: torch.Tensor) -> torch.Tensor:
    """``int16`` uniform on ``[-2^15, 2^15)``, shaped like ``like``: four per 64-bit draw."""
    n = like.numel()
    words = torch.empty(-(-n // 4), dtype=torch.int64, device=like.device)
    words.random_(-(2**63), None)  # the full 64-bit range: every bit uniform
    return words.view(torch.int16)[:n].view(like.shape)


def _apply(
    x: torch.Tensor, bits: torch.Tensor, threshold: int, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x``, ``bits`` of one shape -> (``x * keep * scale``, ``keep`` bool)."""
    keep = bits >= threshold
    return x * (keep.to(x.dtype) * scale), keep


def _scale_grad(grad: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    return grad * (keep.to(grad.dtype) * scale)


_APPLY = Kernel(_apply)
_SCALE_GRAD = Kernel(_scale_grad)


class _Dropout16(torch.autograd.Function):
    """Forward ``x * keep * scale`` (the ``bool`` mask saved); backward ``grad * keep * scale``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, p: float) -> torch.Tensor:
        threshold, scale = drop_threshold(p)
        out, keep = _APPLY(x, uniform_bits(x), threshold, scale)
        ctx.save_for_backward(keep)
        ctx.scale = scale
        result: torch.Tensor = out
        return result

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (keep,) = ctx.saved_tensors
        return _SCALE_GRAD(grad.contiguous(), keep, ctx.scale), None


def dropout16(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout of ``x`` (any shape) with 16-bit uniforms; see the module docstring."""
    out: torch.Tensor = _Dropout16.apply(x, p)
    return out


def masked_dropout16(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout of a bf16/fp16 ``x`` (any shape) with 16-bit uniforms, in two eager
    passes (scale, ``masked_fill``; autograd saves only the ``bool`` drop mask). Same
    semantics as :func:`dropout16`; for half-precision activations, where that compiled kernel
    is slower on this CPU (4096 x 1024 bf16, 1 thread: 53 ms against 19 ms here and 60 ms for
    ``F.dropout``, whose ``bernoulli_`` has no fast bf16 path; a throwaway /tmp timing)."""
    threshold, scale = drop_threshold(p)
    drop = uniform_bits(x) < threshold
    return (x * scale).masked_fill(drop, 0)


class Dropout16(nn.Dropout):
    """``nn.Dropout`` whose training pass on bf16/fp16 activations (under bf16 autocast) is
    :func:`masked_dropout16`; float32 inputs go to ``F.dropout`` unchanged, and evaluation mode
    is the identity. Masks come from torch's default generator (seeded and checkpointed as
    usual) but differ from ``F.dropout``'s for the same seed. On half-precision inputs
    ``inplace`` is ignored (a new tensor is returned) and ``p`` must be below 1 (ValueError)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.dtype in (torch.bfloat16, torch.float16):
            return masked_dropout16(x, self.p)
        return F.dropout(x, self.p, True, self.inplace)


def swap_dropouts(module: nn.Module, *, source: type[nn.Dropout], target: type[nn.Dropout]) -> int:
    """Replace every submodule of ``module`` whose type is exactly ``source`` by a ``target`` of
    the same ``p`` and ``inplace`` (in place); returns how many were replaced."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is source:
                setattr(parent, name, target(child.p, child.inplace))
                count += 1
    return count


def use_dropout16(module: nn.Module) -> int:
    """Replace every ``nn.Dropout`` submodule of ``module`` by a :class:`Dropout16` (in place);
    returns how many were replaced. Functional dropouts (e.g. the attention weights' inside
    ``nn.MultiheadAttention``) are not modules and stay as they are."""
    return swap_dropouts(module, source=nn.Dropout, target=Dropout16)
