"""Reciprocal queries: every triple as a tail query and as a head query turned into a tail query
(Lacroix et al. 2018; LibKGE's reciprocal relations; paper 002, appendix D).

It lives here, below the KGE package, because the filter index and both-direction ranking are
built on it; :mod:`embedlab.kge` uses the same function for training.
"""

from __future__ import annotations

import torch


def as_queries(triples: torch.Tensor, num_relations: int) -> torch.Tensor:
    """Both directions of each triple as tail queries.

    Args:
        triples: ``(B, 3)`` (head, relation, tail).
        num_relations: R; the inverse of ``r`` is ``r + R``.

    Returns:
        ``(2B, 3)`` rows ``(subject, relation, answer)``: first ``(h, r, t)`` for every triple,
        then ``(t, r + R, h)``.
    """
    h, r, t = triples.unbind(1)
    inverse = torch.stack([t, r + num_relations, h], dim=1)  # (B, 3)
    return torch.cat([triples, inverse], dim=0)  # (2B, 3)
