"""Generic tests over every interaction: shapes, broadcasting, score-all == score-one, gradients,
batched == naive formula."""

from __future__ import annotations

import pytest
import torch

from embedlab.kge.interactions import INTERACTIONS, TailLinearInteraction, score_all_tails

NAMES = sorted(INTERACTIONS)


def naive(name: str, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> float:
    """Per-triple textbook formula (1-D tensors)."""
    if name == "distmult":
        return float(sum(h[i] * r[i] * t[i] for i in range(len(h))))
    if name == "complex":
        k = len(h) // 2
        hc = torch.complex(h[:k].double(), h[k:].double())
        rc = torch.complex(r[:k].double(), r[k:].double())
        tc = torch.complex(t[:k].double(), t[k:].double())
        return float((hc * rc * tc.conj()).sum().real)
    raise AssertionError(name)


@pytest.mark.parametrize("name", NAMES)
def test_batched_equals_naive_formula(name: str) -> None:
    torch.manual_seed(0)
    h, r, t = (torch.randn(5, 8) for _ in range(3))
    scores = INTERACTIONS[name]().score(h, r, t)
    assert scores.shape == (5,)
    for i in range(5):
        assert scores[i].item() == pytest.approx(naive(name, h[i], r[i], t[i]), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_broadcasting_shapes(name: str) -> None:
    inter = INTERACTIONS[name]()
    h, r, t = torch.randn(4, 1, 8), torch.randn(4, 1, 8), torch.randn(1, 6, 8)
    assert inter.score(h, r, t).shape == (4, 6)
    assert inter.score(torch.randn(2, 3, 8), torch.randn(8), torch.randn(2, 3, 8)).shape == (2, 3)


@pytest.mark.parametrize("name", NAMES)
def test_score_all_equals_score_one(name: str) -> None:
    torch.manual_seed(1)
    inter = INTERACTIONS[name]()
    h, r, ents = torch.randn(4, 8), torch.randn(4, 8), torch.randn(7, 8)
    all_scores = score_all_tails(inter, h, r, ents)
    assert all_scores.shape == (4, 7)
    for b in range(4):
        for e in range(7):
            one = inter.score(h[b], r[b], ents[e])
            assert all_scores[b, e].item() == pytest.approx(one.item(), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_query_is_consistent_with_score(name: str) -> None:
    inter = INTERACTIONS[name]()
    if not isinstance(inter, TailLinearInteraction):
        pytest.skip("not tail-linear")
    h, r, t = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 8)
    torch.testing.assert_close((inter.query(h, r) * t).sum(-1), inter.score(h, r, t))


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_input(name: str) -> None:
    h, r, t = (torch.randn(3, 8, requires_grad=True) for _ in range(3))
    INTERACTIONS[name]().score(h, r, t).sum().backward()
    for x in (h, r, t):
        assert x.grad is not None and x.grad.abs().sum() > 0
