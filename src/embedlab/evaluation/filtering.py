"""Known-triple index for filtered ranking, held sparsely (no dense N x N mask)."""

from __future__ import annotations

import torch


class KnownAnswers:
    """For each query key ``(subject, relation)`` the sorted set of known answers, as CSR.

    Built from tail queries ``(s, r, o)`` (include reciprocal rows for head prediction). Memory is
    O(number of triples): keys are the sorted unique ``s * num_relation_slots + r`` values.

    Args:
        queries: ``(M, 3)`` rows (subject, relation, answer).
        num_relation_slots: number of relation ids (2R with reciprocals).
    """

    def __init__(self, *, queries: torch.Tensor, num_relation_slots: int) -> None:
        self.num_relation_slots = num_relation_slots
        keys = queries[:, 0] * num_relation_slots + queries[:, 1]
        order = torch.argsort(keys * (int(queries[:, 2].max()) + 1) + queries[:, 2])
        keys, answers = keys[order], queries[order, 2]
        self.keys, counts = torch.unique_consecutive(keys, return_counts=True)  # (K,)
        size, device = len(self.keys) + 1, keys.device
        self.offsets = torch.zeros(size, dtype=torch.int64, device=device)  # (K+1,)
        self.offsets[1:] = torch.cumsum(counts, 0)
        self.answers = answers  # (M,)

    def _locate(
        self, subjects: torch.Tensor, relations: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Start offset into ``answers`` and number of known answers of each query ``(B,)``
        (0 answers for an unknown query)."""
        keys = subjects * self.num_relation_slots + relations
        pos = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        found = self.keys[pos] == keys
        starts = torch.where(found, self.offsets[pos], 0)
        return starts, torch.where(found, self.offsets[pos + 1] - self.offsets[pos], 0)

    def count(self, subjects: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """Number of known answers of each query: ``(B,)`` int64 (0 if unknown)."""
        return self._locate(subjects, relations)[1]

    def contains(
        self, subjects: torch.Tensor, relations: torch.Tensor, candidates: torch.Tensor
    ) -> torch.Tensor:
        """``(B, k)`` bool: ``candidates[b, j]`` is a known answer of query ``b``."""
        rows, cols = self.lookup(subjects, relations)
        if len(rows) == 0:
            return torch.zeros_like(candidates, dtype=torch.bool)
        width = int(max(int(cols.max()), int(candidates.max()))) + 1
        known_keys, _ = (rows * width + cols).sort()  # (P,)
        query = torch.arange(len(subjects), device=candidates.device).unsqueeze(1)  # (B, 1)
        cand_keys = query * width + candidates  # (B, k)
        pos = torch.searchsorted(known_keys, cand_keys).clamp(max=len(known_keys) - 1)
        return known_keys[pos] == cand_keys

    def lookup(self, subjects: torch.Tensor, relations: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Known answers of a batch of queries as coordinates.

        Args:
            subjects, relations: ``(B,)`` int64.

        Returns:
            ``(rows, cols)``: int64 ``(P,)`` each; ``cols[i]`` is a known answer of query
            ``rows[i]``. Queries with no known answer contribute nothing.
        """
        starts, lengths = self._locate(subjects, relations)
        device = lengths.device
        rows = torch.repeat_interleave(torch.arange(len(subjects), device=device), lengths)  # (P,)
        within = torch.arange(len(rows), device=device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths
        )
        return rows, self.answers[starts[rows] + within]
