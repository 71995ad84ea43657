import math

import pytest
import torch

from embedlab.losses import sce, sce_tail_linear


def test_sce_hand_computed() -> None:
    scores = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([2, 0])
    expected = -(3 - math.log(math.e + math.e**2 + math.e**3)) + math.log(3)
    assert sce(scores, targets).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("block_bytes", [4 * 13, 4 * 13 * 7, 10**9])
def test_fused_equals_plain_value_and_gradients(block_bytes: int) -> None:
    torch.manual_seed(0)
    q = torch.randn(50, 6, dtype=torch.float64, requires_grad=True)
    c = torch.randn(13, 6, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 13, (50,))
    plain = sce(q @ c.T, y)
    gq, gc = torch.autograd.grad(2.5 * plain, (q, c))
    fused = sce_tail_linear(q, c, y, block_bytes=block_bytes)
    fq, fc = torch.autograd.grad(2.5 * fused, (q, c))
    assert fused.item() == pytest.approx(plain.item(), rel=1e-10)
    torch.testing.assert_close(fq, gq)
    torch.testing.assert_close(fc, gc)


def test_fused_through_an_upstream_graph() -> None:
    torch.manual_seed(1)
    emb = torch.randn(9, 4, requires_grad=True)
    q = emb[:5] * 2
    loss = sce_tail_linear(q, emb, torch.arange(5))
    (g,) = torch.autograd.grad(loss, emb)
    q = emb[:5] * 2
    loss_ref = sce(q @ emb.T, torch.arange(5))
    (g_ref,) = torch.autograd.grad(loss_ref, emb)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)
