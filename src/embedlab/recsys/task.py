"""MF as a task of the one loop: an epoch is one SGD pass (hand-written sparse updates) or one
ALS / GRALS sweep; validation is RMSE on the held-out split (mode min)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from embedlab.datasets.ratings import RatingDataset
from embedlab.distributed import SINGLE, World, all_sum, shard_bounds
from embedlab.errors import UserError
from embedlab.recsys.als import als_epoch
from embedlab.recsys.config import MfConfig
from embedlab.recsys.metrics import rating_metrics
from embedlab.recsys.model import MatrixFactorization
from embedlab.recsys.ranking import ranking_index, ranking_metrics
from embedlab.recsys.sgd import sgd_epoch
from embedlab.training.loop import Mode, Step

Laplacian = tuple[torch.Tensor, float] | None


class MfTask:
    """The loop's :class:`~embedlab.training.loop.Task` for matrix factorization.

    The parameters are updated by the step itself (no optimizer): SGD-MF's hand-written sparse
    updates (:func:`~embedlab.recsys.sgd.sgd_epoch`, which shuffles with the loop's generator and
    draws SSE once per epoch) or an ALS/GRALS sweep (:func:`~embedlab.recsys.als.als_epoch`).
    One batch is one epoch. Model selection on valid RMSE where the dataset has a valid split
    (``data.valid_fraction`` > 0); otherwise no selection (``metric`` None: the last epoch).
    Each validation also records test RMSE/MAE under ``test`` (curves in the docs).

    Data parallel (``world``): SGD exchanges row updates per batch
    (:func:`~embedlab.recsys.sgd.sgd_epoch`); ALS/GRALS sweeps are refused (their solves are
    per row and need no gradients to average); evaluation splits the ratings over ranks.
    """

    mode: Mode = "min"

    def __init__(
        self,
        *,
        model: MatrixFactorization,
        dataset: RatingDataset,
        config: MfConfig,
        laplacians: tuple[Laplacian, Laplacian] = (None, None),
        world: World = SINGLE,
    ) -> None:
        self.model, self.dataset, self.config, self.laplacians = model, dataset, config, laplacians
        self.world = world
        if world.parallel and config.train.method != "sgd":
            raise UserError(
                f"train.method={config.train.method} is not data-parallel: run it in one process "
                "(without torchrun); train.method=sgd trains under torchrun"
            )
        device = model.mean.device
        self.splits = {
            name: (part.users.to(device), part.items.to(device), part.ratings.to(device))
            for name, part in dataset.splits.items()
        }
        self.metric: str | None = "rmse" if "valid" in dataset.splits else None
        self.ranking = {
            name: ranking_index(dataset, name, config.eval.relevance_threshold, device)
            for name in dataset.splits
            if config.eval.ranking_k and name != "train"
        }

    def build_optimizer(self) -> None:
        return None

    def build_scheduler(self, optimizer: torch.optim.Optimizer | None) -> None:
        return None

    def num_batches(self) -> int:
        return 1

    def batches(self, generator: torch.Generator) -> Iterator[torch.Generator]:
        yield generator  # one step per epoch; SGD shuffles inside with this generator

    def local_batch(self, batch: torch.Generator, world: World) -> tuple[torch.Generator, float]:
        """The step is the whole epoch; :func:`~embedlab.recsys.sgd.sgd_epoch` splits batches."""
        return batch, 1.0

    def global_penalty(self, batch: torch.Generator) -> None:
        """SGD-MF applies its penalties inside :func:`~embedlab.recsys.sgd.sgd_epoch`."""
        return None

    def train_step(self, batch: torch.Generator) -> Step:
        users, items, ratings = self.splits["train"]
        tc = self.config.train
        penalties = (self.config.user_embedding.regularize, self.config.item_embedding.regularize)
        if tc.method == "sgd":
            loss = sgd_epoch(
                self.model,
                users=users,
                items=items,
                ratings=ratings,
                lr=tc.lr,
                weight_decay=tc.weight_decay,
                batch_size=tc.batch_size,
                generator=batch,
                penalties=penalties,
                world=self.world,
            )
        else:
            user_lap, item_lap = self.laplacians
            loss = als_epoch(
                self.model,
                users=users,
                items=items,
                ratings=ratings,
                weight_decay=tc.weight_decay,
                user_laplacian=user_lap,
                item_laplacian=item_lap,
                cg_iterations=tc.laplacian.cg_iterations,
                penalties=penalties,
            )
        # data parallel: every rank reports the whole epoch's ratings; rank 0 counts them
        rows = users.numel() if self.world.is_main else 0
        return Step(loss=torch.tensor(loss), rows=rows, value=loss)

    def evaluate(self, split: str) -> dict[str, Any]:
        """``{"rmse", "mae", "num_ratings"}`` on ``split`` (predictions clipped to the scale),
        with ``eval.ranking_k`` also the top-k metrics
        (:func:`~embedlab.recsys.ranking.ranking_metrics`), ``ranking_users`` and
        ``ranking_skipped_users``."""
        metrics = self._rating_metrics(split)
        if split in self.ranking:
            relevant, seen, skipped = self.ranking[split]
            metrics.update(
                ranking_metrics(
                    self.model,
                    relevant=relevant,
                    seen=seen,
                    ks=self.config.eval.ranking_k,
                    world=self.world,
                )  # fmt: skip
            )
            metrics["ranking_skipped_users"] = skipped
        return metrics

    def _rating_metrics(self, split: str) -> dict[str, Any]:
        users, items, ratings = self.splits[split]
        if not self.world.parallel:
            return rating_metrics(
                self.model, users=users, items=items, ratings=ratings,
                scale=self.dataset.rating_scale,
            )  # fmt: skip
        start, stop = shard_bounds(users.numel(), self.world)
        sq, ab, n = 0.0, 0.0, 0.0
        if stop > start:
            part = rating_metrics(
                self.model, users=users[start:stop], items=items[start:stop],
                ratings=ratings[start:stop], scale=self.dataset.rating_scale,
            )  # fmt: skip
            n = part["num_ratings"]
            sq, ab = part["rmse"] ** 2 * n, part["mae"] * n
        sq, ab, total = all_sum([sq, ab, float(n)], self.world)
        return {"rmse": (sq / total) ** 0.5, "mae": ab / total, "num_ratings": int(total)}

    def validate(self) -> dict[str, Any]:
        metrics: dict[str, Any] = self.evaluate("valid") if self.metric else {}
        metrics["test"] = self.evaluate("test")
        return metrics
