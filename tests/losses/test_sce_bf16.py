"""The blocked SCE kernel under bf16 autocast against a float64 oracle that rounds exactly where
the kernel does: operands to bf16 once, each product's output to bf16, everything else exact."""

from __future__ import annotations

import pytest
import torch

from embedlab.losses import sce_tail_linear
from embedlab.training.device import autocast

BF16 = torch.bfloat16


def _round(x: torch.Tensor) -> torch.Tensor:
    return x.to(BF16).double()


def _oracle(
    q: torch.Tensor, c: torch.Tensor, y: torch.Tensor, lam: float, w: torch.Tensor | None = None
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Loss and gradients with bf16 operands and bf16-rounded products, in float64: the
    weighted softmax gradient ``w_b (softmax - (1 - λ) onehot - λ / N)`` is rounded to bf16
    once (the kernel's ``(B, N)`` matrix), each product's output once."""
    q16, c16 = _round(q), _round(c)
    w64 = torch.ones(len(q), dtype=torch.float64) if w is None else w.double()
    scores = _round(q16 @ c16.T)  # (B, N): the bf16 product output
    rows = torch.arange(len(q))
    lse = torch.logsumexp(scores, 1)
    loss = (w64 * (lse - (1 - lam) * scores[rows, y] - lam * scores.mean(1))).sum()
    d = torch.softmax(scores, 1)
    d[rows, y] -= 1 - lam
    d -= lam / c.shape[0]
    p16 = _round(d * w64.unsqueeze(1))
    return float(loss), _round(p16 @ c16), _round(p16.T @ q16)


@pytest.mark.parametrize("lam", [0.0, 0.3])
@pytest.mark.parametrize("block_bytes", [4 * 500 * 7, 2**20])  # 7-row blocks; one block
def test_bf16_kernel_matches_the_rounded_oracle(lam: float, block_bytes: int) -> None:
    g = torch.Generator().manual_seed(1)
    q = torch.randn(48, 32, generator=g, requires_grad=True)
    c = torch.randn(500, 32, generator=g, requires_grad=True)
    y = torch.randint(0, 500, (48,), generator=g)
    with autocast(torch.device("cpu"), "bf16"):
        low = sce_tail_linear(q, c, y, label_smoothing=lam, block_bytes=block_bytes)
    lq, lc = torch.autograd.grad(low, (q, c))
    exact = sce_tail_linear(q, c, y, label_smoothing=lam)
    eq, ec = torch.autograd.grad(exact, (q, c))
    loss, oq, oc = _oracle(q.detach(), c.detach(), y, lam)
    assert low.dtype == torch.float32 and lq.dtype == torch.float32 and lc.dtype == torch.float32
    assert low.item() == pytest.approx(loss, rel=1e-5)
    # the kernel runs in bf16: it is much closer to the bf16 oracle than to the fp32 kernel
    assert abs(low.item() - loss) < 0.1 * abs(exact.item() - loss)
    assert (lq.double() - oq).norm() / oq.norm() < 1e-3  # one bf16 ulp on rare elements
    assert (lq.double() - oq).norm() < 0.1 * (eq.double() - oq).norm()
    assert (lc.double() - oc).norm() / oc.norm() < 1e-3
    assert (lc.double() - oc).norm() < 0.1 * (ec.double() - oc).norm()


def test_fp32_and_fp64_paths_do_not_round() -> None:
    """Without autocast the kernel keeps the input precision (fp64 oracle to 1e-12)."""
    g = torch.Generator().manual_seed(2)
    q = torch.randn(20, 16, generator=g, dtype=torch.float64, requires_grad=True)
    c = torch.randn(300, 16, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 300, (20,), generator=g)
    with autocast(torch.device("cpu"), "bf16"):  # fp64 inputs ignore autocast's bf16
        out = sce_tail_linear(q, c, y, block_bytes=8 * 300 * 3)
    ref = torch.nn.functional.cross_entropy(q @ c.T, y, reduction="sum")
    assert out.item() == pytest.approx(ref.item(), rel=1e-12)
    gq, gc = torch.autograd.grad(out, (q, c))
    rq, rc = torch.autograd.grad(ref, (q, c))
    torch.testing.assert_close(gq, rq, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gc, rc, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 6.0])  # 6: peaked rows, softmax(target) near 1
def test_bf16_kernel_with_weights_and_label_smoothing(scale: float) -> None:
    """Per-example weights (eq. 16) and λ together, blocks of 5 rows + a remainder; with
    ``scale`` 6 most rows put almost all mass on the target, where ``softmax - 1`` is tiny and
    must still be computed in fp32 before its one rounding."""
    g = torch.Generator().manual_seed(3)
    c = torch.randn(400, 24, generator=g, requires_grad=True)
    y = torch.randint(0, 400, (23,), generator=g)
    q = (scale * c.detach()[y] + 0.3 * torch.randn(23, 24, generator=g)).requires_grad_()
    w = torch.rand(23, generator=g) + 0.5
    lam = 0.1
    with autocast(torch.device("cpu"), "bf16"):
        low = sce_tail_linear(q, c, y, label_smoothing=lam, weights=w, block_bytes=4 * 400 * 5)
    lq, lc = torch.autograd.grad(low, (q, c))
    loss, oq, oc = _oracle(q.detach(), c.detach(), y, lam, w)
    assert low.item() == pytest.approx(loss, rel=1e-5, abs=1e-4)
    assert (lq.double() - oq).norm() / oq.norm() < 2e-3
    assert (lc.double() - oc).norm() / oc.norm() < 2e-3
