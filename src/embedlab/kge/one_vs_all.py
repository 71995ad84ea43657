"""1vsAll: each triple gives a tail query and a reciprocal head query, each scored against every
entity (LibKGE 1vsAll; paper 002's SCE rows, and its TuckER NS/SANS rows with "Sample: All")."""

from __future__ import annotations

import torch

from embedlab.evaluation.queries import as_queries
from embedlab.kge.interactions import TailLinearInteraction
from embedlab.kge.objective import Batch, apply_loss, apply_tail_linear_loss, loss_spec
from embedlab.kge.task import KgeTask


class OneVsAllTask(KgeTask):
    """Loss = (loss of the 2B queries over all N entities) / B + penalties.

    Losses with a tail-linear kernel (the SCE family) of tail-linear interactions go through it
    (:func:`embedlab.losses.sce_tail_linear`, same value as the plain path, no ``(2B, N)``
    matrix); everything else scores ``(2B, N)`` and applies the loss. Binary losses then treat
    every other entity as a negative; a loss that needs noise (``ns_freq``) weights them by
    ``p_n`` (in expectation the sampled and weighted readings coincide when all entities are
    scored).
    """

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
        queries = as_queries(batch, self.model.num_relations)  # (2B, 3)
        subjects, relations, answers = queries.unbind(1)
        loss_cfg = self.config.loss
        spec = loss_spec(loss_cfg)
        inputs = Batch(targets=answers)
        if spec.example_weights:
            inputs.weights = self.frequencies.backward_correction_weights(
                subjects, relations, answers
            )
        interaction = self.model.interaction
        if spec.tail_linear is not None and isinstance(interaction, TailLinearInteraction):
            q = interaction.query(self.model.entities(subjects), self.model.relations(relations))
            summed = apply_tail_linear_loss(loss_cfg, q, self.model.entities.all(), inputs)
        else:
            scores = self.model.score_tails(subjects, relations)  # (2B, N)
            if spec.noise:
                inputs.noise = self.frequencies.noise(relations, power=loss_cfg.freq_power)
            summed = apply_loss(loss_cfg, scores, inputs)
        return summed / len(batch) + self.penalty(batch), len(queries)
