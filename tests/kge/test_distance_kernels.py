"""Oracle tests of the fused distance kernel (``distance_kernels.py``) against the naive broadcast
formula in float64: values, gradients (gradcheck), block edges, eps at ``a == t``, the compiled
float32 path, bf16 autocast, and evaluation ranks through ``score_all_tails``."""

from __future__ import annotations

import pytest
import torch

from embedlab.evaluation.ranking import ranks_from_scores
from embedlab.kge.config import ModelConfig
from embedlab.kge.interactions import build_interaction, score_all_tails
from embedlab.kge.interactions import distance_kernels as dk
from embedlab.kge.interactions.distance_kernels import distance_scores

KINDS = ["l1", "l2", "rotate"]


def naive(kind: str, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(B, d)``, ``(N, d)`` -> ``(B, N)`` scores by broadcasting ``(B, N, d)``."""
    diff = a.unsqueeze(1) - t.unsqueeze(0)  # (B, N, d)
    if kind == "l1":
        return -diff.abs().sum(-1)
    if kind == "l2":
        return -(diff * diff).sum(-1).add(1e-12).sqrt()
    k = a.shape[1] // 2
    return -(diff[..., :k] ** 2 + diff[..., k:] ** 2).add(1e-12).sqrt().sum(-1)


def pair(b: int, n: int, d: int, dtype: torch.dtype = torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(b, d, generator=g, dtype=dtype).requires_grad_()
    t = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_()
    return a, t


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eager blocks of 16 rows x 3 columns: B and N below are not multiples of either."""
    monkeypatch.setattr(dk, "EAGER_ELEMENTS", 16 * 3 * 6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("b", "n"), [(1, 1), (1, 7), (37, 1), (37, 11), (16, 3)])
def test_values_and_gradients_equal_naive_float64(
    kind: str, b: int, n: int, small_blocks: None
) -> None:
    a, t = pair(b, n, 6)
    scores = distance_scores(kind, a, t)  # type: ignore[arg-type]
    expected = naive(kind, a, t)
    torch.testing.assert_close(scores, expected, rtol=1e-12, atol=1e-12)
    g = torch.randn(b, n, dtype=torch.float64)
    got = torch.autograd.grad(scores, (a, t), g)
    want = torch.autograd.grad(expected, (a, t), g)
    for x, y in zip(got, want, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind: str, small_blocks: None) -> None:
    a, t = pair(5, 4, 6, seed=1)
    assert torch.autograd.gradcheck(lambda x, y: distance_scores(kind, x, y), (a, t))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_eps_at_equal_anchor_and_tail_gives_finite_gradients(kind: str) -> None:
    a = torch.tensor([[0.5, -1.0, 2.0, 0.0]], dtype=torch.float64, requires_grad=True)
    t = a.detach().clone().repeat(2, 1)
    t[1, 0] += 1.0  # one identical candidate, one different in one coordinate
    t.requires_grad_()
    scores = distance_scores(kind, a, t)  # type: ignore[arg-type]
    torch.testing.assert_close(scores, naive(kind, a, t), rtol=0, atol=1e-12)
    assert abs(scores[0, 0].item()) <= 2 * 1e-6  # sqrt(eps) per complex coordinate
    for grad in torch.autograd.grad(scores.sum(), (a, t)):
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize("kind", KINDS)
def test_float32_path_matches_float64_formula(kind: str) -> None:
    """Float32 runs the compiled kernel (when inductor works) with edge blocks: 70 x 530.

    Float32 tests share d = 16, so that the suite compiles each kernel once."""
    a, t = pair(70, 530, 16)
    a32, t32 = (x.detach().float().requires_grad_() for x in (a, t))
    scores = distance_scores(kind, a32, t32)  # type: ignore[arg-type]
    expected = naive(kind, a, t)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores.double(), expected, rtol=1e-5, atol=1e-4)
    g = torch.randn(70, 530, dtype=torch.float64)
    got = torch.autograd.grad(scores, (a32, t32), g.float())
    want = torch.autograd.grad(expected, (a, t), g)
    for x, y in zip(got, want, strict=True):
        torch.testing.assert_close(x.double(), y, rtol=1e-4, atol=1e-3)


def test_bf16_autocast_scores_in_float32() -> None:
    a, t = pair(9, 13, 16, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = distance_scores("rotate", a, t)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores, naive("rotate", a, t), rtol=1e-5, atol=1e-5)
    scores.sum().backward()
    assert a.grad is not None and t.grad is not None


@pytest.mark.parametrize(("name", "p_norm"), [("transe", 1), ("transe", 2), ("rotate", 1)])
def test_evaluation_ranks_equal_naive_formula(name: str, p_norm: int) -> None:
    torch.manual_seed(0)
    inter = build_interaction(ModelConfig(name=name, dim=16, relation_dim=None, p_norm=p_norm))
    h, t = torch.randn(40, 16), torch.randn(300, 16)
    r = torch.randn(40, inter.relation_dim(16))  # type: ignore[operator]
    targets = torch.randint(0, 300, (40,))
    with torch.no_grad():
        fused = score_all_tails(inter, h, r, t)
        old = score_all_tails(inter, h, r, t, fused=False)
        ref = inter.score(h.double()[:, None], r.double()[:, None], t.double()[None])  # type: ignore[operator]
    want = ranks_from_scores(ref, targets).realistic
    assert torch.equal(ranks_from_scores(fused, targets).realistic, want)
    assert torch.equal(ranks_from_scores(old, targets).realistic, want)


def test_eager_fallback_matches_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    a, t = pair(20, 40, 16, dtype=torch.float32)
    compiled = distance_scores("rotate", a, t)
    monkeypatch.setenv("EMBEDLAB_COMPILE", "0")
    torch.testing.assert_close(distance_scores("rotate", a, t), compiled, rtol=1e-5, atol=1e-5)
