"""Generic tests over every interaction: shapes, broadcasting, score-all == score-one, gradients
reach every parameter, batched == naive textbook formula."""

from __future__ import annotations

import pytest
import torch

from embedlab.kge.config import ModelConfig
from embedlab.kge.interactions import (
    INTERACTIONS,
    TailDistanceInteraction,
    TailLinearInteraction,
    build_interaction,
    score_all_tails,
)

DIM = 8
CASES = [(name, {}) for name in sorted(INTERACTIONS)] + [("transe", {"p_norm": 2})]
IDS = [f"{n}-L{o['p_norm']}" if o else n for n, o in CASES]


def make(name: str, opts: dict) -> torch.nn.Module:
    torch.manual_seed(123)
    return build_interaction(ModelConfig(name=name, dim=DIM, relation_dim=None, **opts))


def rel_dim(inter: torch.nn.Module) -> int:
    return inter.relation_dim(DIM)  # type: ignore[operator]


def as_complex(x: torch.Tensor) -> torch.Tensor:
    k = len(x) // 2
    return torch.complex(x[:k].double(), x[k:].double())


def naive(
    inter: torch.nn.Module, name: str, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor
) -> float:
    """Per-triple textbook formula (1-D tensors), written independently of the batched code."""
    h, r, t = h.double(), r.double(), t.double()
    if name == "distmult":
        return float(sum(h[i] * r[i] * t[i] for i in range(len(h))))
    if name == "complex":
        return float((as_complex(h) * as_complex(r) * as_complex(t).conj()).sum().real)
    if name == "transe":
        p = inter.p_norm  # type: ignore[union-attr]
        return -float(sum(abs(h[i] + r[i] - t[i]) ** p for i in range(len(h))) ** (1 / p))
    if name == "rotate":
        rot = torch.polar(torch.ones_like(r), r)
        return -float((as_complex(h) * rot - as_complex(t)).abs().sum())
    if name == "rescal":
        m = r.view(DIM, DIM)
        return float(sum(h[i] * m[i, j] * t[j] for i in range(DIM) for j in range(DIM)))
    if name == "tucker":
        w = inter.core.detach().double()  # type: ignore[union-attr]
        return float(
            sum(
                w[i, j, k] * h[i] * r[j] * t[k]
                for i in range(DIM)
                for j in range(len(r))
                for k in range(DIM)
            )
        )
    raise AssertionError(name)


@pytest.mark.parametrize(("name", "opts"), CASES, ids=IDS)
def test_batched_equals_naive_formula(name: str, opts: dict) -> None:
    inter = make(name, opts)
    h, r, t = torch.randn(5, DIM), torch.randn(5, rel_dim(inter)), torch.randn(5, DIM)
    scores = inter.score(h, r, t)  # type: ignore[operator]
    assert scores.shape == (5,)
    for i in range(5):
        expected = naive(inter, name, h[i], r[i], t[i])
        assert scores[i].item() == pytest.approx(expected, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize(("name", "opts"), CASES, ids=IDS)
def test_broadcasting_shapes(name: str, opts: dict) -> None:
    inter = make(name, opts)
    dr = rel_dim(inter)
    h, r, t = torch.randn(4, 1, DIM), torch.randn(4, 1, dr), torch.randn(1, 6, DIM)
    assert inter.score(h, r, t).shape == (4, 6)  # type: ignore[operator]
    out = inter.score(torch.randn(2, 3, DIM), torch.randn(dr), torch.randn(2, 3, DIM))  # type: ignore[operator]
    assert out.shape == (2, 3)


@pytest.mark.parametrize(("name", "opts"), CASES, ids=IDS)
@pytest.mark.parametrize("grad", [False, True])
def test_score_all_equals_score_one(name: str, opts: dict, grad: bool, monkeypatch) -> None:
    import embedlab.kge.interactions.base as base

    monkeypatch.setattr(base, "BLOCK_ELEMENTS", 3 * DIM)  # force several candidate blocks
    inter = make(name, opts)
    h = torch.randn(4, DIM, requires_grad=grad)
    r, ents = torch.randn(4, rel_dim(inter)), torch.randn(7, DIM, requires_grad=grad)
    all_scores = score_all_tails(inter, h, r, ents)  # type: ignore[arg-type]
    assert all_scores.shape == (4, 7)
    for b in range(4):
        for e in range(7):
            one = inter.score(h[b], r[b], ents[e])  # type: ignore[operator]
            assert all_scores[b, e].item() == pytest.approx(one.item(), rel=1e-4, abs=1e-4)
    if grad:  # blocked + checkpointed gradients equal the plain broadcast's
        g = torch.autograd.grad(all_scores.square().sum(), (h, ents))
        plain = inter.score(h.unsqueeze(1), r.unsqueeze(1), ents.unsqueeze(0))  # type: ignore[operator]
        g_ref = torch.autograd.grad(plain.square().sum(), (h, ents))
        for a, b_ in zip(g, g_ref, strict=True):
            torch.testing.assert_close(a, b_, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("name", "opts"), CASES, ids=IDS)
def test_fast_path_is_consistent_with_score(name: str, opts: dict) -> None:
    inter = make(name, opts)
    h, r, t = torch.randn(3, DIM), torch.randn(3, rel_dim(inter)), torch.randn(3, DIM)
    if isinstance(inter, TailLinearInteraction):
        torch.testing.assert_close((inter.query(h, r) * t).sum(-1), inter.score(h, r, t))
    else:
        assert isinstance(inter, TailDistanceInteraction)
        torch.testing.assert_close(-inter.distance(inter.anchor(h, r), t), inter.score(h, r, t))


@pytest.mark.parametrize(("name", "opts"), CASES, ids=IDS)
def test_gradients_reach_every_input_and_parameter(name: str, opts: dict) -> None:
    inter = make(name, opts)
    h, t = (torch.randn(3, DIM, requires_grad=True) for _ in range(2))
    r = torch.randn(3, rel_dim(inter), requires_grad=True)
    inter.score(h, r, t).sum().backward()  # type: ignore[operator]
    for x in (h, r, t, *inter.parameters()):
        assert x.grad is not None and x.grad.abs().sum() > 0


def test_relation_widths() -> None:
    widths = {n: make(n, {}).relation_dim(DIM) for n in INTERACTIONS}  # type: ignore[operator]
    assert widths == {
        "distmult": DIM,
        "complex": DIM,
        "transe": DIM,
        "rotate": DIM // 2,
        "rescal": DIM * DIM,
        "tucker": DIM,
    }
