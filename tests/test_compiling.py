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
    ranks = ranks_from_scores(scores, targets)  # compiled on float32 CPU
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
    return Kernel(_rank_counts)


def test_failed_compilation_warns_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fn: Any) -> Any:
        def run(*args: Any) -> Any:
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(compiling, "_failed", False)
    kernel = Kernel(lambda a, b: (a * b).sum(1))
    x = torch.randn(4, 5)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        out = kernel(x, x)
    assert torch.equal(out, (x * x).sum(1))
    assert not compile_enabled(x)  # disabled for the process: no second warning
    assert torch.equal(kernel(x, x), (x * x).sum(1))
