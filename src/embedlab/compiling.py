"""``torch.compile`` for embedlab's small elementwise/reduction kernels, with an eager fallback.

A :class:`Kernel` wraps a plain tensor function. On CPU float32/bfloat16 inputs it runs the
function through ``torch.compile`` (inductor's C++ backend fuses the passes over a ``(B, N)``
block into one loop nest; the first call compiles, seconds, cached on disk by inductor) with the
first dimension of every tensor argument dynamic, so any batch size shares one compilation.
Everywhere else (float64 oracles, CUDA, ``EMBEDLAB_COMPILE=0``, inside another compilation, or
after a compilation error, which warns once and disables compiling for the process) the same
function runs eagerly, so results never depend on whether a compiler is installed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import torch

ENV = "EMBEDLAB_COMPILE"
_failed = False


def compile_enabled(x: torch.Tensor) -> bool:
    """Whether a kernel called with ``x`` as its first tensor runs compiled."""
    return (
        not _failed
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16)
        and os.environ.get(ENV, "1") != "0"
        and not torch.compiler.is_compiling()
    )


def compile_failed(err: Exception, what: str) -> None:
    """Disable compiling for this process after ``err`` (warns once): eager is still exact."""
    global _failed
    _failed = True
    warnings.warn(
        f"torch.compile of {what} failed ({type(err).__name__}: {err}); running eagerly (slower)",
        RuntimeWarning,
        stacklevel=3,
    )


MIN_ELEMENTS = 2**18  # smaller first tensors run eagerly: compiling (seconds) would not pay


class Kernel:
    """``Kernel(fn)(*args)`` == ``fn(*args)``, compiled where :func:`compile_enabled` and the
    first tensor argument has at least ``min_elements`` elements (tiny datasets such as Nations
    stay eager: a first compilation costs seconds).

    ``dynamic_args``: positions of the arguments whose first dimension is dynamic (one
    compilation for any batch size); None: every tensor argument's. The other dimensions are
    static (the distance kernels keep ``d`` and the padded column block static: a kernel with
    dynamic ``d`` measured up to 3.7x slower).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        min_elements: int = MIN_ELEMENTS,
        dynamic_args: tuple[int, ...] | None = None,
    ) -> None:
        self.fn, self.min_elements, self.dynamic_args = fn, min_elements, dynamic_args
        self._compiled: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        first = next(a for a in args if isinstance(a, torch.Tensor))
        if first.numel() < self.min_elements or not compile_enabled(first):
            return self.fn(*args)
        if self._compiled is None:
            self._compiled = torch.compile(self.fn)
        for i, arg in enumerate(args):
            dynamic = self.dynamic_args is None or i in self.dynamic_args
            if dynamic and isinstance(arg, torch.Tensor) and arg.dim() > 0:
                torch._dynamo.maybe_mark_dynamic(arg, 0)  # rows: one compilation per shape family
        try:
            return self._compiled(*args)
        except Exception as err:  # no working C++ compiler, or an inductor bug: eager is exact
            compile_failed(err, getattr(self.fn, "__name__", "a kernel"))
            return self.fn(*args)
