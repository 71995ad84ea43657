"""KvsAll: each distinct training query ``(subject, relation)`` (both directions) scored against
every entity with all its training answers as positives (multi-label; LibKGE KvsAll)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from embedlab.errors import UserError
from embedlab.kge.objective import Batch, apply_loss, loss_spec
from embedlab.kge.task import KgeTask


class KvsAllTask(KgeTask):
    """Batches of distinct queries ``(b, 2)``; loss = (summed loss) / b + penalties.

    Softmax losses use the target distribution ``p_d(y|x)`` = uniform over the query's answers
    (eq. 4); binary losses take every answer as a positive and every other entity as a
    negative.

    Raises:
        UserError: a loss with per-example weights (``sce_bc``: its weights are per (x, y) pair;
            use 1vsAll or negative sampling).
    """

    def setup(self) -> None:
        if loss_spec(self.config.loss).example_weights:
            raise UserError(
                f"loss {self.config.loss.name} needs train.type 1vsAll or negative_sampling"
            )
        known = self.frequencies.known
        slots = known.num_relation_slots
        self.queries = torch.stack([known.keys // slots, known.keys % slots], dim=1)  # (K, 2)

    def _rows(self) -> int:
        return len(self.queries)

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        # the loop's shuffling generator lives on the CPU; the queries on the model's device
        order = torch.randperm(len(self.queries), generator=generator).to(self.queries.device)
        for idx in order.split(self.config.train.batch_size):
            yield self.queries[idx]  # (b, 2)

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
        subjects, relations = batch.unbind(1)
        scores = self.model.score_tails(subjects, relations)  # (b, N)
        rows, cols = self.frequencies.known.lookup(subjects, relations)
        positives = torch.zeros_like(scores, dtype=torch.bool)
        positives[rows, cols] = True
        inputs = Batch(positives=positives)
        loss_cfg = self.config.loss
        if loss_spec(loss_cfg).noise:
            inputs.noise = self.frequencies.noise(relations, power=loss_cfg.freq_power)
        summed = apply_loss(loss_cfg, scores, inputs)
        return summed / len(batch) + self.penalty(batch), len(batch)

    def penalty_triples(self, batch: torch.Tensor) -> torch.Tensor:
        """Penalties on the batch's (subject, relation) as triples with the subject as object
        too: ``(b, 2)`` queries -> ``(b, 3)``."""
        subjects, relations = batch.unbind(1)
        return torch.stack([subjects, relations % self.model.num_relations, subjects], dim=1)
