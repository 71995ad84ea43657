"""Filtered ranking of true answers against all entities (paper 002, appendix D)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from embedlab.compiling import Kernel


@dataclass(frozen=True)
class Ranks:
    """Ranks of the true answers, 1 = best. All fields ``(Q,)``.

    ``optimistic``: 1 + #candidates scoring strictly higher. ``pessimistic``: 1 + #candidates
    scoring higher or equal (other than the true one). ``realistic``: their mean (the expected
    rank under random tie-breaking; default). ``num_candidates``: candidates left after filtering.
    """

    optimistic: torch.Tensor
    pessimistic: torch.Tensor
    realistic: torch.Tensor
    num_candidates: torch.Tensor

    @staticmethod
    def cat(parts: list[Ranks]) -> Ranks:
        return Ranks(
            optimistic=torch.cat([p.optimistic for p in parts]),
            pessimistic=torch.cat([p.pessimistic for p in parts]),
            realistic=torch.cat([p.realistic for p in parts]),
            num_candidates=torch.cat([p.num_candidates for p in parts]),
        )

    def get(self, ties: str) -> torch.Tensor:
        return {
            "realistic": self.realistic,
            "optimistic": self.optimistic,
            "pessimistic": self.pessimistic,
        }[ties]


def filter_scores_(scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Set known positives to -inf in place. ``scores``: ``(B, N)``; ``rows, cols``: ``(P,)``."""
    scores[rows, cols] = float("-inf")
    return scores


def _rank_counts(
    scores: torch.Tensor, true: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(B, N)`` scores and ``(B, 1)`` true scores -> per row: #higher, #ties other than the
    true answer, #NaN, #finite (each ``(B,)``). One fused pass when compiled."""
    higher = (scores > true).sum(1)
    ties = (scores == true).sum(1) - 1  # the true answer ties with itself
    nans = torch.isnan(scores).sum(1)
    return higher, ties, nans, torch.isfinite(scores).sum(1)


_RANK_COUNTS = Kernel(_rank_counts)


def ranks_from_scores(scores: torch.Tensor, targets: torch.Tensor) -> Ranks:
    """Ranks of ``targets`` ``(B,)`` among ``scores`` ``(B, N)`` (already filtered).

    The true answer's own score must still be in ``scores`` (filtering restores it).
    NaN scores count as ties with the true answer (neither better nor worse).
    """
    true = scores.gather(1, targets.unsqueeze(1))  # (B, 1)
    higher, ties, nans, finite = _RANK_COUNTS(scores, true)
    optimistic = (1 + higher).double()
    pessimistic = (1 + higher + ties + nans).double()
    return Ranks(
        optimistic=optimistic,
        pessimistic=pessimistic,
        realistic=(optimistic + pessimistic) / 2,
        num_candidates=finite,
    )


def metrics_from_ranks(ranks: torch.Tensor, ks: tuple[int, ...] = (1, 3, 10)) -> dict[str, float]:
    """MRR, MR and Hits@k of ``(Q,)`` ranks."""
    out = {"mrr": float((1.0 / ranks).mean()), "mr": float(ranks.mean())}
    for k in ks:
        out[f"hits@{k}"] = float((ranks <= k).double().mean())
    return out
