"""embedlab.compiling: compiled kernels equal their eager functions; a failed compilation warns
once and falls back to the exact eager result; float64, EMBEDLAB_COMPILE=0 run eagerly."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import embedlab.compiling as compiling
from embedlab.compiling import Kernel, compile_enabled
from embedlab.evaluation.ranking import _rank_counts, ranks_from_scores


def test_rank_counts_compiled_equal_the_per_row_loop() -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(-3, 4, (37, 50), generator=g).float()  # many ties
    scores[0, 5] = float("nan")
    scores[1, :10] = float("-inf")
    targets = torch.randint(0, 50, (37,), generator=g)
    targets[1] = 12
    ranks = ranks_from_scores(scores, targets)
    for b in range(37):  # oracle: one query at a time
        row, true = scores[b].tolist(), float(scores[b, targets[b]])
        higher = sum(s > true for s in row)
        ties = sum(s == true for s in row) - 1 + sum(s != s for s in row)
        assert ranks.optimistic[b] == 1 + higher
        assert ranks.pessimistic[b] == 1 + higher + ties
        assert ranks.num_candidates[b] == sum(abs(s) != float("inf") and s == s for s in row)


def test_eager_and_compiled_agree_and_float64_is_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(9, 300)
    true = x[:, :1].clone()
    compiled = _rank_counts_kernel()(x, true)
    monkeypatch.setenv("EMBEDLAB_COMPILE", "0")
    assert not compile_enabled(x)
    eager = _rank_counts_kernel()(x, true)
    for a, b in zip(compiled, eager, strict=True):
        assert torch.equal(a, b)
    monkeypatch.delenv("EMBEDLAB_COMPILE")
    assert compile_enabled(x) and not compile_enabled(x.double())


def _rank_counts_kernel() -> Kernel:
    return Kernel(_rank_counts, min_elements=0)


def test_failed_compilation_warns_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fn: Any) -> Any:
        def run(*args: Any) -> Any:
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(compiling, "_failed", False)
    kernel = Kernel(lambda a, b: (a * b).sum(1), min_elements=0)
    x = torch.randn(4, 5)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        out = kernel(x, x)
    assert torch.equal(out, (x * x).sum(1))
    assert not compile_enabled(x)  # disabled for the process: no second warning
    assert torch.equal(kernel(x, x), (x * x).sum(1))


def test_small_inputs_stay_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def counting(fn: Any) -> Any:
        calls.append(1)
        return fn

    monkeypatch.setattr(torch, "compile", counting)
    kernel = Kernel(lambda a: a.sum(1), min_elements=100)
    kernel(torch.randn(9, 10))
    assert calls == []
    kernel(torch.randn(10, 10))
    assert calls == [1]


@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_compiled_sce_block_equals_eager(lam: float) -> None:
    """The fused softmax-gradient block (losses/sce.py), compiled vs eager, fp32 and bf16."""
    from embedlab.losses.sce import _softmax_grad

    g = torch.Generator().manual_seed(0)
    scores = torch.randn(33, 700, generator=g) * 5
    y = torch.randint(0, 700, (33,), generator=g)
    w = torch.rand(33, generator=g)
    kernel = Kernel(_softmax_grad, min_elements=0)
    for dtype in (torch.float32, torch.bfloat16):
        loss_c, grad_c = kernel(scores.to(dtype), y, w, lam, dtype)
        loss_e, grad_e = _softmax_grad(scores.to(dtype), y, w, lam, dtype)
        torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=1e-5)
        assert grad_c.dtype == dtype
        tol = 1e-6 if dtype == torch.float32 else 1e-2
        torch.testing.assert_close(grad_c.float(), grad_e.float(), rtol=tol, atol=tol)
