"""KGE training tasks: what a batch is and how it becomes a loss (training types of LibKGE).

:class:`KgeTask` holds what every type shares (model, data, validation); the three types are in
``one_vs_all.py``, ``kvs_all.py`` and ``negative_sampling.py``; :func:`build_task` picks one.
Loss values are summed over queries and divided by the number of triples (KvsAll: of queries),
as LibKGE does, so the learning rates of paper 002's tables 5-6 carry over.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from embedlab.datasets.kg import KgDataset
from embedlab.distributed import SINGLE, World
from embedlab.embeddings.sharded import replicated
from embedlab.evaluation.filtering import KnownAnswers
from embedlab.evaluation.kge_eval import evaluate_kge
from embedlab.kge.config import KgeConfig
from embedlab.kge.frequencies import Frequencies
from embedlab.kge.model import KgeModel
from embedlab.training.data_parallel import local_slice
from embedlab.training.loop import Mode, Step
from embedlab.training.optim import build_optimizer, build_plateau_scheduler


class KgeTask:
    """Shared part of the training types: batches of training triples and validation.

    Implements the loop's :class:`~embedlab.training.loop.Task`: model selection on valid MRR
    (mode max), Adam/Adagrad and ReduceLROnPlateau from ``train.*``; a training type implements
    :meth:`loss` only.
    """

    metric = "mrr"
    mode: Mode = "max"

    def __init__(
        self,
        *,
        model: KgeModel,
        dataset: KgDataset,
        known: KnownAnswers,
        config: KgeConfig,
        world: World = SINGLE,
    ) -> None:
        self.model, self.dataset, self.known, self.config = model, dataset, known, config
        self.world = world
        self.train_triples = dataset.splits["train"].to(self.device)  # (T, 3), on the device
        self.valid_triples = dataset.splits["valid"].to(self.device)  # (V, 3)
        self.frequencies = Frequencies(
            train=self.train_triples,
            num_entities=dataset.num_entities,
            num_relations=dataset.num_relations,
        )
        self.setup()

    def setup(self) -> None:
        """Per-type preparation after the shared fields are set (a hook; nothing here)."""

    def _rows(self) -> int:
        return len(self.train_triples)

    def num_batches(self) -> int:
        return -(-self._rows() // self.config.train.batch_size)

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.train_triples), generator=generator)
        order = order.to(self.train_triples.device)
        for idx in order.split(self.config.train.batch_size):
            yield self.train_triples[idx]  # (B, 3)

    def local_batch(self, batch: torch.Tensor, world: World) -> tuple[torch.Tensor | None, float]:
        """This rank's rows of a global batch and their share (losses are means over rows)."""
        return local_slice(batch, world)

    def build_optimizer(self) -> torch.optim.Optimizer:
        train = self.config.train
        return build_optimizer(self.model.parameters(), name=train.optimizer, lr=train.lr)

    def build_scheduler(
        self, optimizer: torch.optim.Optimizer | None
    ) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
        train = self.config.train
        assert optimizer is not None
        return build_plateau_scheduler(
            optimizer, factor=train.lr_decay, patience=train.lr_patience, mode=self.mode
        )

    def train_step(self, batch: torch.Tensor) -> Step:
        """``batch: (B, 3)`` training triples -> the training type's loss (:meth:`loss`)."""
        loss, rows = self.loss(batch.to(self.device))
        return Step(loss=loss, rows=rows)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The batch loss (divided by the number of triples, plus :meth:`penalty`) and the
        number of rows it scored."""
        raise NotImplementedError

    def penalty_triples(self, batch: torch.Tensor) -> torch.Tensor:
        """The ``(B, 3)`` triples whose rows a batch penalizes (the batch itself here)."""
        return batch

    def penalty(self, batch: torch.Tensor) -> torch.Tensor:
        """The tables' penalty for ``batch`` (``KgeModel.penalty``); 0 in a data-parallel job,
        where :meth:`global_penalty` adds it for the whole global batch instead."""
        if self.world.parallel:
            return torch.zeros((), device=self.device)
        return self.model.penalty(self.penalty_triples(batch))

    def global_penalty(self, batch: torch.Tensor) -> torch.Tensor | None:
        """Data parallel: the penalty of the *global* batch, the same on every rank (KD's
        entropy and distillation terms average over a batch's unique rows, which is not a sum
        over rank slices); ``None`` in one process (:meth:`loss` includes it)."""
        if not self.world.parallel:
            return None
        return self.model.penalty(self.penalty_triples(batch.to(self.device)))

    def validate(self) -> dict[str, Any]:
        with replicated(self.model):  # sharded tables: one gather, then local lookups
            return evaluate_kge(
                self.model,
                self.valid_triples,
                self.known,
                ties=self.config.eval.ties,
                batch_size=self.config.eval.batch_size,
                world=self.world,
            )
