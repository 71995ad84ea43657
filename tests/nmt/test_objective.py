"""Label-smoothed loss by hand and against torch's, the inverse-sqrt schedule and its step count."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F

from embedlab.nmt.objective import InverseSqrtSchedule, inverse_sqrt, label_smoothed_nll
from embedlab.nmt.vocab import PAD


def test_label_smoothed_loss_by_hand() -> None:
    logits = torch.tensor([[[1.0, 2.0, 0.5, -1.0], [0.0, 0.0, 3.0, 1.0], [9.0, -9.0, 0.0, 0.0]]])
    targets = torch.tensor([[1, 2, PAD]])  # the third position is padding
    eps = 0.1
    loss, nll = label_smoothed_nll(logits, targets, eps)
    want_loss, want_nll = 0.0, 0.0
    for row, gold in ((logits[0, 0].tolist(), 1), (logits[0, 1].tolist(), 2)):
        norm = math.log(sum(math.exp(v) for v in row))
        logp = [v - norm for v in row]
        q = [eps / 4 + (1 - eps) * (i == gold) for i in range(4)]
        want_loss -= sum(qi * lp for qi, lp in zip(q, logp, strict=True))
        want_nll -= logp[gold]
    assert float(loss) == pytest.approx(want_loss, rel=1e-6)
    assert float(nll) == pytest.approx(want_nll, rel=1e-6)
    assert float(label_smoothed_nll(logits, targets, 0.0)[0]) == pytest.approx(want_nll, rel=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothed_loss_equals_torch_cross_entropy(eps: float) -> None:
    """Value and gradient against torch's own label-smoothed cross-entropy (two calls)."""
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11, requires_grad=True)  # fp32, as the loss computes
    targets = torch.randint(1, 11, (3, 5))
    targets[0, 3:] = PAD
    targets[2, 1] = PAD
    loss, nll = label_smoothed_nll(logits, targets, eps)
    (grad,) = torch.autograd.grad(loss, logits)
    flat, gold = logits.reshape(-1, 11), targets.reshape(-1)
    want = F.cross_entropy(flat, gold, ignore_index=PAD, label_smoothing=eps, reduction="sum")
    (want_grad,) = torch.autograd.grad(want, logits)
    want_nll = F.cross_entropy(flat, gold, ignore_index=PAD, reduction="sum")
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    assert float(nll) == pytest.approx(float(want_nll.detach()), rel=1e-6)
    assert not nll.requires_grad
    torch.testing.assert_close(grad, want_grad, rtol=1e-5, atol=1e-7)


def test_label_smoothed_loss_ignores_a_padding_row_with_minus_inf() -> None:
    logits = torch.tensor([[[1.0, 2.0, 0.5], [0.0, float("-inf"), 0.0]]])
    targets = torch.tensor([[1, PAD]])
    loss, _ = label_smoothed_nll(logits, targets, 0.1)
    want = F.cross_entropy(logits[0], targets[0], ignore_index=PAD, label_smoothing=0.1,
                           reduction="sum")  # fmt: skip
    assert torch.isfinite(loss) and float(loss) == pytest.approx(float(want), rel=1e-6)


def test_inverse_sqrt_values() -> None:
    values = [inverse_sqrt(s, lr=1.0, warmup_steps=4) for s in (1, 2, 4, 16, 100)]
    assert values == pytest.approx([0.25, 0.5, 1.0, 0.5, 0.2])
    # Vaswani et al.'s formula for lr = (d * warmup)^-0.5
    d, warmup = 512, 4000
    for step in (1, 1000, 4000, 10_000):
        vaswani = d**-0.5 * min(step**-0.5, step * warmup**-1.5)
        ours = inverse_sqrt(step, lr=(d * warmup) ** -0.5, warmup_steps=warmup)
        assert ours == pytest.approx(vaswani, rel=1e-12)


def test_schedule_counts_steps_across_epochs() -> None:
    group: dict[str, float] = {}
    loop = SimpleNamespace(optimizer=SimpleNamespace(param_groups=[group]))
    schedule = InverseSqrtSchedule(lr=1.0, warmup_steps=10, batches_per_epoch=7)
    seen = []
    for epoch in (1, 2, 3):
        for index in range(7):
            schedule.on_batch_start(loop, epoch - 1 + index / 7)  # type: ignore[arg-type]
            seen.append(group["lr"])
    assert seen == pytest.approx([inverse_sqrt(s, lr=1.0, warmup_steps=10) for s in range(1, 22)])
