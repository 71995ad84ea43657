"""Negative sampling: each triple's tail query gets ``negatives.tail`` sampled wrong tails and its
reciprocal head query ``negatives.head`` sampled wrong heads (LibKGE's ``negative_sampling`` with
``num_samples.o / .s``; paper 002, eq. 6, tables 5-6 "Sample")."""

from __future__ import annotations

import torch

from embedlab.kge.objective import Batch, apply_loss, loss_spec
from embedlab.kge.sampling import NegativeSampler
from embedlab.kge.task import KgeTask


class NegativeSamplingTask(KgeTask):
    """Loss = (sum over both sides of the loss of ``(Q, 1 + k)`` candidate scores) / B + penalties.

    Column 0 holds the true answer. Noise: uniform, or for a loss that needs noise (``ns_freq``)
    with the ``sampled`` reading the unigram distribution of the corrupted slot (power
    ``loss.freq_power``); with the ``weighted`` reading uniform negatives weighted by it.
    Softmax losses become a sampled softmax over the ``1 + k`` candidates.
    """

    def setup(self) -> None:
        loss = self.config.loss
        noise = loss_spec(loss).noise
        self.sampled_noise = noise and loss.freq_reading == "sampled"
        self.weighted_noise = noise and loss.freq_reading == "weighted"
        self.sampler = NegativeSampler(
            num_entities=self.dataset.num_entities,
            frequencies=self.frequencies,
            power=loss.freq_power if self.sampled_noise else None,
            filter=self.config.train.negatives.filter,
        )

    def _side(
        self, subjects: torch.Tensor, relations: torch.Tensor, answers: torch.Tensor, k: int
    ) -> torch.Tensor:
        loss = self.config.loss
        negatives = self.sampler.sample(subjects, relations, k)  # (Q, k)
        candidates = torch.cat([answers.unsqueeze(1), negatives], dim=1)  # (Q, 1 + k)
        scores = self.model.score_candidates(subjects, relations, candidates)  # (Q, 1 + k)
        positives = torch.zeros_like(scores, dtype=torch.bool)
        positives[:, 0] = True
        batch = Batch(targets=torch.zeros_like(answers), positives=positives)
        if loss_spec(loss).example_weights:
            batch.weights = self.frequencies.backward_correction_weights(
                subjects, relations, answers
            )
        if self.weighted_noise:
            batch.noise = self.frequencies.noise(relations, candidates, power=loss.freq_power)
        return apply_loss(loss, scores, batch)

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
        h, r, t = batch.unbind(1)
        neg = self.config.train.negatives
        tail_side = self._side(h, r, t, neg.tail)
        head_side = self._side(t, r + self.model.num_relations, h, neg.head)
        summed = tail_side + head_side
        return summed / len(batch) + self.penalty(batch), 2 * len(batch)
