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
        self.offsets = torch.zeros(len(self.keys) + 1, dtype=torch.int64)  # (K+1,)
        self.offsets[1:] = torch.cumsum(counts, 0)
        self.answers = answers  # (M,)

    def lookup(self, subjects: torch.Tensor, relations: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Known answers of a batch of queries as coordinates.

        Args:
            subjects, relations: ``(B,)`` int64.

        Returns:
            ``(rows, cols)``: int64 ``(P,)`` each; ``cols[i]`` is a known answer of query
            ``rows[i]``. Queries with no known answer contribute nothing.
        """
        keys = subjects * self.num_relation_slots + relations
        pos = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        found = self.keys[pos] == keys
        starts = torch.where(found, self.offsets[pos], 0)
        lengths = torch.where(found, self.offsets[pos + 1] - self.offsets[pos], 0)
        rows = torch.repeat_interleave(torch.arange(len(keys)), lengths)  # (P,)
        within = torch.arange(len(rows)) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths
        )
        return rows, self.answers[starts[rows] + within]
