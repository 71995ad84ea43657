"""Negative samplers: uniform or frequency-based noise, optionally filtering known positives."""

from __future__ import annotations

import torch

from embedlab.kge.frequencies import Frequencies

MAX_RESAMPLE_ROUNDS = 10


class NegativeSampler:
    """Draw ``k`` negative answers for each tail query.

    Args:
        num_entities: N.
        frequencies: training counts (for ``power`` noise and filtering).
        power: None for uniform noise ``p_n = 1/N`` (NS w/ Uni, eq. 6); β for unigram noise
            ``p_n ∝ (count + 1)^β`` of the corrupted slot (NS w/ Freq, sampled reading, §3.1.2).
        filter: resample negatives that are training answers of their query: rejection for
            :data:`MAX_RESAMPLE_ROUNDS` rounds, then an exact draw from the noise restricted to
            the query's non-answers for what is left (dense queries); a query whose answers are
            every entity keeps its draws.
    """

    def __init__(
        self,
        *,
        num_entities: int,
        frequencies: Frequencies,
        power: float | None = None,
        filter: bool = False,
    ) -> None:
        self.num_entities, self.frequencies, self.filter = num_entities, frequencies, filter
        self.noise: torch.Tensor | None = None  # (2, N); None: uniform
        self.cdf: torch.Tensor | None = None
        if power is not None:
            self.noise = frequencies.noise_table(power)
            self.cdf = torch.cumsum(self.noise, dim=1)

    def _draw(self, relations: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        if self.cdf is None:
            return torch.randint(0, self.num_entities, shape, device=relations.device)
        device = relations.device
        u = torch.rand(shape, device=device)  # inverse-CDF sampling, one 1-D CDF per direction
        out = torch.empty(shape, dtype=torch.int64, device=device)
        direction = self.frequencies.direction(relations)
        for d in (0, 1):
            rows = direction == d
            out[rows] = torch.searchsorted(self.cdf[d], u[rows])
        return out.clamp_(max=self.num_entities - 1)

    def sample(self, subjects: torch.Tensor, relations: torch.Tensor, k: int) -> torch.Tensor:
        """``(Q,)`` subjects and relations (``< 2R``) -> ``(Q, k)`` int64 negative answers."""
        negatives = self._draw(relations, (len(subjects), k))
        if not self.filter:
            return negatives
        for _ in range(MAX_RESAMPLE_ROUNDS):
            bad = self.frequencies.known.contains(subjects, relations, negatives)
            if not bool(bad.any()):
                break
            rows = bad.nonzero()[:, 0]
            negatives[bad] = self._draw(relations[rows], (len(rows), 1)).squeeze(1)
        else:
            self._draw_from_non_answers_(subjects, relations, negatives)
        return negatives

    def _draw_from_non_answers_(
        self, subjects: torch.Tensor, relations: torch.Tensor, negatives: torch.Tensor
    ) -> None:
        bad = self.frequencies.known.contains(subjects, relations, negatives)  # (Q, k)
        rows = bad.any(dim=1).nonzero()[:, 0]
        if len(rows) == 0:
            return
        if self.noise is None:
            probs = torch.ones(len(rows), self.num_entities, device=negatives.device)
        else:
            probs = self.noise[self.frequencies.direction(relations[rows])]  # a copy: (rows, N)
        r_idx, cols = self.frequencies.known.lookup(subjects[rows], relations[rows])
        probs[r_idx, cols] = 0.0
        ok = probs.sum(dim=1) > 0
        for i in ok.nonzero()[:, 0].tolist():
            where = bad[rows[i]]
            draws = torch.multinomial(probs[i], int(where.sum()), replacement=True)
            negatives[rows[i], where] = draws
