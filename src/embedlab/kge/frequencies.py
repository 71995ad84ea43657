"""Training-data frequencies for the frequency-based losses of paper 002 (§3.1.2, §4.1).

Queries follow the reciprocal convention (:mod:`embedlab.evaluation.queries`): a query is
``(subject, relation < 2R)`` and its answers are tails for ``relation < R``, heads otherwise.
"""

from __future__ import annotations

import torch

from embedlab.evaluation.filtering import KnownAnswers
from embedlab.evaluation.queries import as_queries


class Frequencies:
    """Answer counts per direction and query counts of the training triples.

    Args:
        train: ``(M, 3)`` training triples. num_entities: N. num_relations: R.

    Attributes:
        answer_counts: ``(2, N)`` float, row 0 = count of each entity as a tail (answers of
            forward queries), row 1 = as a head (answers of reciprocal queries).
        known: :class:`KnownAnswers` of the training queries (both directions).
    """

    def __init__(self, *, train: torch.Tensor, num_entities: int, num_relations: int) -> None:
        self.num_relations = num_relations
        self.answer_counts = torch.stack(
            [
                torch.bincount(train[:, 2], minlength=num_entities),
                torch.bincount(train[:, 0], minlength=num_entities),
            ]
        ).to(torch.get_default_dtype())  # (2, N)
        queries = as_queries(train, num_relations)  # (2M, 3)
        self.known = KnownAnswers(queries=queries, num_relation_slots=2 * num_relations)
        raw = self._raw_bc(queries[:, 0], queries[:, 1], queries[:, 2])
        self._bc_scale = 1.0 / float(raw.mean())

    def direction(self, relations: torch.Tensor) -> torch.Tensor:
        """``(Q,)`` relations ``< 2R`` -> ``(Q,)`` 0 (tail answers) or 1 (head answers)."""
        return (relations >= self.num_relations).long()

    def noise_table(self, power: float) -> torch.Tensor:
        """``(2, N)`` unigram noise of each slot (row 0 tails, row 1 heads), rows sum to 1."""
        table = (self.answer_counts + 1.0).pow(power)
        return table / table.sum(dim=1, keepdim=True)

    def noise(
        self, relations: torch.Tensor, candidates: torch.Tensor | None = None, *, power: float
    ) -> torch.Tensor:
        """Unigram noise ``p_n(y|x) ∝ (count(y) + 1)^β`` of the corrupted slot.

        Add-one smoothing keeps ``p_n > 0`` everywhere, as eq. 9 requires; β = ``power``.
        ``relations (Q,)`` -> ``(Q, N)``; with ``candidates (Q, k)`` -> ``(Q, k)``.
        """
        table = self.noise_table(power)  # (2, N)
        direction = self.direction(relations)
        if candidates is None:
            return table[direction]
        return table[direction.unsqueeze(1), candidates]

    def _raw_bc(
        self, subjects: torch.Tensor, relations: torch.Tensor, answers: torch.Tensor
    ) -> torch.Tensor:
        counts_y = self.answer_counts[self.direction(relations), answers].clamp(min=1.0)
        counts_x = self.known.count(subjects, relations).to(counts_y.dtype)  # #x
        return counts_x / counts_y

    def backward_correction_weights(
        self, subjects: torch.Tensor, relations: torch.Tensor, answers: torch.Tensor
    ) -> torch.Tensor:
        """SCE w/ BC weights ``#x / #y`` (paper 002, eq. 16), ``(Q,)``.

        Scaled so that their mean over all training queries is 1 (eq. 16 holds up to a constant;
        this keeps learning rates comparable with plain SCE).
        """
        return self._raw_bc(subjects, relations, answers) * self._bc_scale
