"""Adjusted MRR and AMRI: hand-computed values, exact expectations, 0 for random ranks."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from embedlab.evaluation.adjusted import (
    adjusted_metrics,
    expected_mean_rank,
    expected_mrr,
    harmonic_numbers,
)


def test_hand_example() -> None:
    # MRR = 7/12; E[MRR] = (H(2)/2 + 2 H(4)/4) / 3 = (3/4 + 25/24) / 3 = 43/72
    # adjusted MRR = (42/72 - 43/72) / (1 - 43/72) = -1/29
    # MR = 7/3; E[MR] = (3/2 + 5/2 + 5/2) / 3 = 13/6; AMRI = 1 - (4/3) / (7/6) = -1/7
    ranks = torch.tensor([1.0, 2.0, 4.0])
    n = torch.tensor([2, 4, 4])
    assert expected_mrr(n) == pytest.approx(43 / 72)
    assert expected_mean_rank(n) == pytest.approx(13 / 6)
    m = adjusted_metrics(ranks, n)
    assert m["adjusted_mrr"] == pytest.approx(-1 / 29)
    assert m["amri"] == pytest.approx(-1 / 7)


def test_perfect_and_worst_ranks() -> None:
    n = torch.tensor([3, 10, 50])
    best = adjusted_metrics(torch.ones(3, dtype=torch.float64), n)
    assert best["adjusted_mrr"] == pytest.approx(1.0) and best["amri"] == pytest.approx(1.0)
    worst = adjusted_metrics(n.double(), n)  # every true answer last
    assert worst["amri"] == pytest.approx(-1.0)
    assert worst["adjusted_mrr"] < 0


def test_expectations_equal_enumeration_over_all_ranks() -> None:
    for size in (1, 2, 7, 30):
        enum_mrr = sum(Fraction(1, r) for r in range(1, size + 1)) / size
        assert expected_mrr(torch.tensor([size])) == pytest.approx(float(enum_mrr), abs=1e-15)
        assert expected_mean_rank(torch.tensor([size])) == (size + 1) / 2
    h = harmonic_numbers(5)
    assert h.tolist() == pytest.approx([1, 1.5, 11 / 6, 25 / 12, 137 / 60])


def test_random_ranks_average_zero() -> None:
    """Uniform ranks on 1..n_i: both adjusted metrics are 0 in expectation. With 200k queries
    the standard error is < 0.003, so |mean| < 0.015 fails with negligible probability."""
    g = torch.Generator().manual_seed(0)
    n = torch.randint(1, 200, (200_000,), generator=g)
    ranks = (torch.rand(n.shape, generator=g, dtype=torch.float64) * n).floor() + 1  # 1..n_i
    m = adjusted_metrics(ranks, n)
    assert abs(m["adjusted_mrr"]) < 0.015 and abs(m["amri"]) < 0.015


def test_degenerate_and_mismatched_inputs() -> None:
    one = adjusted_metrics(torch.ones(4), torch.ones(4, dtype=torch.int64))
    assert math.isnan(one["adjusted_mrr"]) and math.isnan(one["amri"])
    assert math.isnan(adjusted_metrics(torch.ones(0), torch.ones(0))["amri"])
    with pytest.raises(ValueError, match="differ"):
        adjusted_metrics(torch.ones(3), torch.ones(2, dtype=torch.int64))
