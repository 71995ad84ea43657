"""1vsAll: each triple gives a tail query and a reciprocal head query, each scored against every
entity (LibKGE 1vsAll; paper 002's SCE rows, and its TuckER NS/SANS rows with "Sample: All")."""

from __future__ import annotations

import torch

from embedlab.kge.interactions import TailLinearInteraction
from embedlab.kge.objective import Batch, apply_loss
from embedlab.kge.reciprocal import as_queries
from embedlab.kge.task import KgeTask
from embedlab.losses import LOSS_FAMILY, sce_tail_linear


class OneVsAllTask(KgeTask):
    """Loss = (loss of the 2B queries over all N entities) / B + penalties.

    SCE-family losses of tail-linear models go through the fused blocked kernel
    (:func:`embedlab.losses.sce_tail_linear`, same value as the plain path, no ``(2B, N)``
    matrix); everything else scores ``(2B, N)`` and applies the loss. NS-family losses then
    treat every other entity as a negative; ``ns_freq`` weights them by ``p_n`` (in expectation
    the sampled and weighted readings coincide when all entities are scored).
    """

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
        queries = as_queries(batch, self.model.num_relations)  # (2B, 3)
        subjects, relations, answers = queries.unbind(1)
        loss_cfg = self.config.loss
        weights = None
        if loss_cfg.name == "sce_bc":
            weights = self.frequencies.backward_correction_weights(subjects, relations, answers)
        scorer = self.model.scorer
        if LOSS_FAMILY[loss_cfg.name] == "softmax" and isinstance(scorer, TailLinearInteraction):
            q = scorer.query(self.model.entities(subjects), self.model.relations(relations))
            lam = loss_cfg.label_smoothing if loss_cfg.name == "sce_ls" else 0.0
            summed = sce_tail_linear(
                q, self.model.entities.all(), answers, lam=lam, weights=weights
            )
        else:
            scores = self.model.score_tails(subjects, relations)  # (2B, N)
            positives = torch.zeros_like(scores, dtype=torch.bool)
            positives[torch.arange(len(answers)), answers] = True
            noise = None
            if loss_cfg.name == "ns_freq":
                noise = self.frequencies.noise(relations, power=loss_cfg.freq_power)
            summed = apply_loss(
                loss_cfg,
                scores,
                Batch(positives=positives, targets=answers, bc_weights=weights, noise=noise),
            )
        return summed / len(batch) + self.model.penalty(batch), len(queries)
