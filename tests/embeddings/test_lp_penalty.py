"""``whole_table_lp`` against the naive autograd formula ``scale / p * sum |w|^p``: values and
gradients in float64 (gradcheck), fp32 under bf16 autocast, and the lookup table's penalty."""

from __future__ import annotations

import pytest
import torch

from embedlab.embeddings import lookup
from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.embeddings.lp_penalty import whole_table_lp


def _naive(w: torch.Tensor, p: float, scale: float) -> torch.Tensor:
    return scale / p * w.abs().pow(p).sum()


@pytest.mark.parametrize("p", [1, 2, 3, 2.5, 1.5])
def test_value_and_gradient_match_the_formula(p: float) -> None:
    gen = torch.Generator().manual_seed(int(p * 10))
    w = torch.randn(37, 6, generator=gen, dtype=torch.float64)
    w[0, 0] = 0.0  # a zero entry: gradient 0 there (the subgradient autograd's abs takes)
    a, b = w.clone().requires_grad_(), w.clone().requires_grad_()
    got, want = whole_table_lp(a, p=p, scale=0.3), _naive(b, p, 0.3)
    assert torch.allclose(got, want, rtol=1e-12, atol=0)
    up = torch.tensor(1.7, dtype=torch.float64)
    (got * up).backward()
    (want * up).backward()
    assert a.grad is not None and b.grad is not None
    assert torch.isfinite(a.grad).all() and a.grad[0, 0] == 0.0
    if p >= 2 or p == 1:  # the naive pow backward gives nan at 0 for 1 < p < 2
        assert torch.allclose(a.grad, b.grad, rtol=1e-12, atol=1e-15)
    else:
        assert torch.allclose(a.grad[1:], b.grad[1:], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_gradcheck(p: float) -> None:
    w = torch.rand(5, 4, dtype=torch.float64) + 0.1  # away from the kink at 0 for p = 1
    w = (w * torch.tensor([1.0, -1.0]).repeat(2).double()).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: whole_table_lp(x, p=p, scale=0.7), (w,))


@pytest.mark.parametrize("p", [2, 3])
def test_fp32_under_bf16_autocast(p: int) -> None:
    w = torch.randn(300, 64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = whole_table_lp(w, p=p, scale=1e-3)
    assert got.dtype == torch.float32  # a bf16 sum would be off by ~1e-3 relative
    assert torch.allclose(got, _naive(w.detach().double(), p, 1e-3).float(), rtol=1e-5)


def test_invalid_order_is_an_error() -> None:
    with pytest.raises(ValueError, match="p >= 1"):
        whole_table_lp(torch.ones(2, 2), p=0.5, scale=1.0)


@pytest.mark.parametrize(("kind", "p"), [("lp", 2), ("lp", 3), ("n3", 2)])
def test_lookup_table_penalty_uses_it(kind: str, p: int, monkeypatch: pytest.MonkeyPatch) -> None:
    config = EmbeddingConfig.model_validate({"regularize": {"kind": kind, "p": p, "weight": 0.01}})
    table = EmbeddingTable(num_rows=20, dim=8, config=config)
    order = 3 if kind == "n3" else p
    calls: list[float] = []

    def spy(weight: torch.Tensor, *, p: float, scale: float) -> torch.Tensor:
        calls.append(p)
        return whole_table_lp(weight, p=p, scale=scale)

    monkeypatch.setattr(lookup, "whole_table_lp", spy)
    got = table.penalty(torch.tensor([1, 2, 2]))
    assert calls == [order]
    got.backward()
    assert table.weight.grad is not None
    w = table.weight.detach()
    assert torch.allclose(got, _naive(w, order, 0.01), rtol=1e-5)
    assert torch.allclose(table.weight.grad, 0.01 * w * w.abs().pow(order - 2), rtol=1e-5)
