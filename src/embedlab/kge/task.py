"""1vsAll KGE training task: each triple gives a tail query and a (reciprocal) head query,
each scored against all entities with softmax cross-entropy (paper 002, eq. 5; LibKGE 1vsAll)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from embedlab.config import KgeConfig
from embedlab.datasets.kg import KgDataset
from embedlab.evaluation.filtering import KnownAnswers
from embedlab.evaluation.kge_eval import evaluate_kge
from embedlab.kge.interactions import TailLinearInteraction
from embedlab.kge.model import KgeModel
from embedlab.kge.reciprocal import as_queries
from embedlab.losses import LOSSES, sce_tail_linear


class OneVsAllTask:
    """Batches of training triples; loss = (SCE of the 2B queries) / B + penalties.

    Dividing the summed cross-entropy of both directions by the number of triples matches
    LibKGE's 1vsAll job, so the learning rates of paper 002's tables 5-6 carry over.
    """

    metric = "mrr"

    def __init__(
        self, *, model: KgeModel, dataset: KgDataset, known: KnownAnswers, config: KgeConfig
    ) -> None:
        self.model, self.dataset, self.known, self.config = model, dataset, known, config
        self.train_triples = dataset.splits["train"]
        self.loss_fn = LOSSES[config.loss.name]

    def num_batches(self) -> int:
        return -(-len(self.train_triples) // self.config.train.batch_size)

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.train_triples), generator=generator)
        for idx in order.split(self.config.train.batch_size):
            yield self.train_triples[idx]  # (B, 3)

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
        queries = as_queries(batch, self.model.num_relations)  # (2B, 3)
        subjects, relations, answers = queries.unbind(1)
        interaction = self.model.interaction
        if self.config.loss.name == "sce" and isinstance(interaction, TailLinearInteraction):
            # fused path: same value as sce(score_tails(...)), without the (2B, N) matrix
            q = interaction.query(self.model.entities(subjects), self.model.relations(relations))
            summed = sce_tail_linear(q, self.model.entities.all(), answers)
        else:
            summed = self.loss_fn(self.model.score_tails(subjects, relations), answers)
        loss = summed / len(batch)
        penalty = self.model.penalty(batch)
        return loss + penalty, len(queries)

    def validate(self) -> dict[str, Any]:
        return evaluate_kge(
            self.model,
            self.dataset.splits["valid"],
            self.known,
            ties=self.config.eval.ties,
            batch_size=self.config.eval.batch_size,
        )
