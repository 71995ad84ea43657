"""KGE interactions: parameter-free scoring functions (CONVENTIONS.md #1).

An interaction scores broadcastable ``h, r, t`` with ``score(h, r, t) -> (...)`` (the last axis is
the embedding axis). Interactions that are linear in the tail (DistMult, ComplEx, RESCAL, TuckER)
also give ``query(h, r)`` with ``score(h, r, t) == (query(h, r) * t).sum(-1)``; scoring against all
entities is then one matrix product, written once in :func:`score_all_tails`. Distance models
(TransE, RotatE) have no ``query`` and go through the broadcasting path.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Interaction(Protocol):
    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class TailLinearInteraction(Interaction, Protocol):
    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor: ...


class DistMult:
    """DistMult (Yang et al., ICLR 2015): ``score = sum_i h_i r_i t_i``.

    Shapes: ``h, r, t`` broadcastable ``(..., d)`` -> ``(...)``; relation width = entity width.
    """

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return h * r

    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (h * r * t).sum(-1)


class ComplEx:
    """ComplEx (Trouillon et al., ICML 2016): ``score = Re(<h, r, conj(t)>)``.

    A width-``d`` row holds ``d/2`` complex numbers: real parts first, imaginary parts second.
    ``query(h, r) = [Re(h r), Im(h r)]`` so that ``score = <query, t>``.
    Shapes: ``(..., d)`` broadcastable -> ``(...)``; ``d`` must be even.
    """

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        h_re, h_im = h.chunk(2, dim=-1)
        r_re, r_im = r.chunk(2, dim=-1)
        return torch.cat([h_re * r_re - h_im * r_im, h_re * r_im + h_im * r_re], dim=-1)

    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h_re, h_im = h.chunk(2, dim=-1)
        r_re, r_im = r.chunk(2, dim=-1)
        t_re, t_im = t.chunk(2, dim=-1)
        return (
            h_re * r_re * t_re + h_im * r_re * t_im + h_re * r_im * t_im - h_im * r_im * t_re
        ).sum(-1)


INTERACTIONS: dict[str, type] = {"distmult": DistMult, "complex": ComplEx}


def score_all_tails(
    interaction: Interaction, h: torch.Tensor, r: torch.Tensor, tails: torch.Tensor
) -> torch.Tensor:
    """Score each ``(h_b, r_b)`` against every candidate tail.

    Args:
        h: ``(B, d)`` head embeddings; r: ``(B, d_r)`` relation embeddings;
        tails: ``(N, d)`` candidate tail embeddings.

    Returns:
        ``(B, N)`` scores. Tail-linear interactions use one matrix product
        ``query(h, r) @ tails.T``; others broadcast ``(B, 1, d)`` against ``(1, N, d)``.
    """
    if isinstance(interaction, TailLinearInteraction):
        return interaction.query(h, r) @ tails.T  # (B, d) @ (d, N) -> (B, N)
    return interaction.score(h.unsqueeze(1), r.unsqueeze(1), tails.unsqueeze(0))  # (B, N)
