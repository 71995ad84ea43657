"""Chance-adjusted rank metrics: adjusted MRR and the adjusted mean rank index (AMRI).

Both re-index a metric ``M`` so that its expectation under uniformly random ranks is 0 and its
best value is 1: ``M* = (M - E[M]) / (best - E[M])`` (Berrendorf et al. 2020, "Interpretable and
Fair Comparison of Link Prediction or Entity Alignment Methods", eq. for AMRI; Hoyt et al. 2022,
"A Unified Framework for Rank-based Evaluation Metrics for Link Prediction in Knowledge Graphs",
section 3, the re-indexed metrics). The expectation uses each query's own candidate count
``n_i`` (after filtering), so a query with few candidates counts its easy ranks for less.

These are PyKEEN 1.11's ``AdjustedArithmeticMeanRankIndex`` (``amri``) and
``AdjustedInverseHarmonicMeanRank`` (``adjusted_mean_reciprocal_rank``) without weights;
``benchmarks/adjusted_metrics_pykeen.py`` checks that they agree to 1e-6.
"""

from __future__ import annotations

import torch


def harmonic_numbers(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(n,)`` float64 on ``device``: ``H(1), ..., H(n)`` with ``H(m) = sum_{j=1..m} 1/j``."""
    return torch.cumsum(1.0 / torch.arange(1, n + 1, dtype=torch.float64, device=device), 0)


def expected_mean_rank(num_candidates: torch.Tensor) -> float:
    """``E[MR] = mean_i (n_i + 1) / 2`` under uniformly random ranks (Berrendorf et al. 2020).

    Args:
        num_candidates: ``(Q,)`` candidates ``n_i >= 1`` of each query (true answer included).
    """
    return float(((num_candidates.double() + 1) / 2).mean())


def expected_mrr(num_candidates: torch.Tensor) -> float:
    """``E[MRR] = mean_i H(n_i) / n_i`` under uniformly random ranks (Hoyt et al. 2022, sec. 3).

    Args:
        num_candidates: ``(Q,)`` candidates ``n_i >= 1`` of each query (true answer included).
    """
    n = num_candidates.long()
    h = harmonic_numbers(int(n.max()), n.device)  # (max n,)
    return float((h[n - 1] / n.double()).mean())


def _reindex(value: float, expected: float, best: float) -> float:
    """``(value - expected) / (best - expected)``; NaN where every query has one candidate (the
    metric is then fixed: random and perfect rankings cannot be told apart)."""
    span = best - expected
    return (value - expected) / span if span != 0 else float("nan")


def adjusted_metrics(ranks: torch.Tensor, num_candidates: torch.Tensor) -> dict[str, float]:
    """Adjusted MRR and AMRI of ``(Q,)`` ranks (1 = best) with ``(Q,)`` candidate counts.

    ``adjusted_mrr = (MRR - E[MRR]) / (1 - E[MRR])`` (Hoyt et al. 2022; PyKEEN's adjusted
    inverse harmonic mean rank) and ``amri = 1 - (MR - 1) / (E[MR] - 1)`` (Berrendorf et al.
    2020, AMRI). Both are 1 for perfect ranks, 0 in expectation for random ranks; AMRI lies in
    [-1, 1]. PyKEEN defines them for realistic ranks (the default ``eval.ties``); other tie
    policies are accepted here and adjust their own ranks.

    Returns:
        ``{"adjusted_mrr", "amri"}``; both NaN when every ``n_i`` is 1, and for no queries.

    Raises:
        ValueError: ``ranks`` and ``num_candidates`` differ in length.
    """
    if ranks.shape != num_candidates.shape:
        raise ValueError(
            f"ranks {tuple(ranks.shape)} and num_candidates {tuple(num_candidates.shape)} differ"
        )
    if ranks.numel() == 0:
        return {"adjusted_mrr": float("nan"), "amri": float("nan")}
    # a query whose own score is not finite has no finite candidate; count it as one
    n = num_candidates.clamp(min=1)
    ranks = ranks.double()
    mrr, mr = float((1.0 / ranks).mean()), float(ranks.mean())
    return {
        "adjusted_mrr": _reindex(mrr, expected_mrr(n), 1.0),
        "amri": _reindex(mr, expected_mean_rank(n), 1.0),
    }
