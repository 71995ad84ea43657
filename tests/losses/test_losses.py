"""Each loss against values computed by hand from its equation (paper 002), plus the identities
that tie the family together."""

from __future__ import annotations

import math

import pytest
import torch

from embedlab.losses import (
    frequency_negative_weights,
    ns,
    ns_freq,
    sans,
    sans_negative_weights,
    sce,
    sce_bc,
    sce_ls,
    sce_tail_linear,
)


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


SCORES = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]], dtype=torch.float64)
TARGETS = torch.tensor([2, 0])


def log_softmax(row: list[float], i: int) -> float:
    return row[i] - math.log(sum(math.exp(v) for v in row))


def test_sce_ls_hand_computed() -> None:
    lam = 0.3  # λ
    expected = 0.0
    for row, y in zip(SCORES.tolist(), TARGETS.tolist(), strict=True):
        expected += -(1 - lam) * log_softmax(row, y)
        expected += -lam / 3 * sum(log_softmax(row, i) for i in range(3))
    value = sce_ls(SCORES, TARGETS, label_smoothing=lam).item()
    assert value == pytest.approx(expected, rel=1e-12)
    plain = sce_ls(SCORES, TARGETS, label_smoothing=0.0).item()
    assert plain == pytest.approx(sce(SCORES, TARGETS).item())
    with pytest.raises(ValueError, match="label_smoothing"):
        sce_ls(SCORES, TARGETS, label_smoothing=1.0)


def test_sce_soft_targets_equal_eq4() -> None:
    p = torch.tensor([[0.0, 0.25, 0.75], [1.0, 0.0, 0.0]], dtype=torch.float64)
    expected = -sum(
        p[b, i].item() * log_softmax(SCORES[b].tolist(), i) for b in range(2) for i in range(3)
    )
    assert sce(SCORES, p).item() == pytest.approx(expected, rel=1e-12)


def test_sce_bc_hand_computed() -> None:
    w = torch.tensor([2.0, 0.5], dtype=torch.float64)
    expected = -2.0 * log_softmax(SCORES[0].tolist(), 2) - 0.5 * log_softmax(SCORES[1].tolist(), 0)
    assert sce_bc(SCORES, TARGETS, weights=w).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_fused_sce_with_smoothing_and_weights_equals_plain(lam: float) -> None:
    torch.manual_seed(0)
    q = torch.randn(20, 5, dtype=torch.float64, requires_grad=True)
    c = torch.randn(11, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 11, (20,))
    w = torch.rand(20, dtype=torch.float64)
    ce = torch.nn.functional.cross_entropy(q @ c.T, y, reduction="none", label_smoothing=lam)
    plain = (w * ce).sum()
    fused = sce_tail_linear(q, c, y, label_smoothing=lam, weights=w, block_bytes=4 * 11 * 3)
    assert fused.item() == pytest.approx(plain.item(), rel=1e-10)
    for a, b in zip(
        torch.autograd.grad(fused, (q, c)), torch.autograd.grad(plain, (q, c)), strict=True
    ):
        torch.testing.assert_close(a, b)


POS = torch.tensor([[True, False, False], [False, True, True]])


def test_ns_hand_computed_sum_and_mean() -> None:
    s, g = SCORES, 0.5
    # row 0: positive 1.0, negatives 2.0, 3.0; row 1: positives -1.0, 0.0, negative 0.5
    pos = log_sigmoid(1.0 + g) + log_sigmoid(-1.0 + g) + log_sigmoid(0.0 + g)
    neg_sum = log_sigmoid(-(2.0 + g)) + log_sigmoid(-(3.0 + g)) + log_sigmoid(-(0.5 + g))
    neg_mean = (log_sigmoid(-(2.0 + g)) + log_sigmoid(-(3.0 + g))) / 2 + log_sigmoid(-(0.5 + g))
    assert ns(s, POS, margin=g).item() == pytest.approx(-(pos + neg_sum), rel=1e-12)
    assert ns(s, POS, margin=g, negative_reduction="mean").item() == pytest.approx(
        -(pos + neg_mean), rel=1e-12
    )


def test_sans_weights_hand_computed_and_alpha_zero_is_ns() -> None:
    w = sans_negative_weights(SCORES, POS, adversarial_temperature=2.0, negative_reduction="mean")
    e2, e3 = math.exp(2 * 2.0), math.exp(2 * 3.0)
    assert w[0].tolist() == pytest.approx([0.0, e2 / (e2 + e3), e3 / (e2 + e3)])
    assert w[1].tolist() == pytest.approx([1.0, 0.0, 0.0])
    for red in ("sum", "mean"):
        value = sans(SCORES, POS, adversarial_temperature=0.0, negative_reduction=red).item()
        assert value == pytest.approx(ns(SCORES, POS, negative_reduction=red).item())
    # the weights are detached: the gradient w.r.t. the negatives is w * sigmoid(s)
    s = SCORES.clone().requires_grad_(True)
    loss = sans(s, POS, adversarial_temperature=2.0, negative_reduction="mean")
    (g,) = torch.autograd.grad(loss, s)
    expected = w[0, 2] * torch.sigmoid(s[0, 2].detach())
    assert g[0, 2].item() == pytest.approx(expected.item())


def test_ns_freq_weights_follow_the_noise() -> None:
    noise = torch.tensor([[0.5, 0.1, 0.4], [0.2, 0.3, 0.5]], dtype=torch.float64)
    w = frequency_negative_weights(noise, POS, "sum")
    assert w[0].tolist() == pytest.approx([0.0, 2 * 0.1 / 0.5, 2 * 0.4 / 0.5])
    assert w[1].tolist() == pytest.approx([1.0, 0.0, 0.0])
    uniform = torch.full_like(noise, 1 / 3)
    assert ns_freq(SCORES, POS, noise=uniform).item() == pytest.approx(ns(SCORES, POS).item())
