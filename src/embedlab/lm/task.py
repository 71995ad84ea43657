"""The LSTM LM as a task of the one loop: an epoch is one ordered truncated-BPTT pass with the
LSTM state carried across windows; validation is valid perplexity (model selection on the mean
NLL, mode min)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import torch

from embedlab.datasets.tokens import TokenCorpus
from embedlab.distributed import SINGLE, World, all_sum, shard_bounds
from embedlab.errors import UserError
from embedlab.lm.config import LmConfig, LmTrainConfig
from embedlab.lm.data import batchify, detach_state, num_windows, windows
from embedlab.lm.model import LstmLm, State
from embedlab.lm.objective import evaluate_stream, perplexity, window_loss
from embedlab.training.callbacks import Callback
from embedlab.training.loop import Loop, Mode, Step
from embedlab.training.optim import build_optimizer

Window = tuple[torch.Tensor, torch.Tensor]


def learning_rate(tc: LmTrainConfig, epoch: int) -> float:
    """The lr of 1-based ``epoch``: ``lr * lr_decay ** max(0, epoch - decay_after)`` (Zaremba)."""
    return tc.lr * tc.lr_decay ** max(0, epoch - tc.decay_after)


class TrainPerplexity(Callback):
    """Adds ``train_perplexity = exp(mean token NLL of the epoch)`` to the trace's epoch events."""

    def epoch_fields(self, loop: Loop, loss: float) -> dict[str, Any]:
        return {"train_perplexity": perplexity(loss)}


class LmTask:
    """The loop's :class:`~embedlab.training.loop.Task` for the LSTM LM (Zaremba et al. 2014).

    A batch is one window ``(inputs, targets): (B, t)`` of the batchified training stream, in
    order; the LSTM state is carried from window to window (detached) and reset at each epoch.
    The step's loss is the token NLL summed over time and averaged over the streams plus the
    tables' penalties; its logged value is the mean NLL per token. SGD at ``train.lr``; the
    per-epoch schedule and gradient clipping are callbacks (:func:`learning_rate`).

    Data parallel (``world``): every rank reads the same global windows ``(B, t)``; rank r
    trains on its contiguous run of the ``B`` streams (its own LSTM state); its loss, averaged
    over its ``B_r`` streams, has share ``B_r / B`` of the global batch, and the tables'
    penalty is that of the global window (:meth:`global_penalty`). Evaluation splits the
    evaluation streams the same way and sums NLL and token counts over ranks.
    """

    metric = "loss"  # mean valid NLL: the same order as perplexity
    mode: Mode = "min"

    def __init__(
        self, *, model: LstmLm, corpus: TokenCorpus, config: LmConfig, world: World = SINGLE
    ) -> None:
        self.model, self.corpus, self.config, self.world = model, corpus, config, world
        self.device = next(model.parameters()).device
        streams = config.train.batch_size
        if streams < world.world_size:
            raise UserError(
                f"train.batch_size={streams} streams cannot be split over {world.world_size} "
                "processes; use at least one stream per process"
            )
        self.streams = shard_bounds(streams, world)  # this rank's [start, stop) of the B streams
        self.train_data = batchify(corpus.splits["train"], streams).to(self.device)  # (B, T)
        self.state: State | None = None

    def build_optimizer(self) -> torch.optim.Optimizer:
        return build_optimizer(self.model.parameters(), name="sgd", lr=self.config.train.lr)

    def build_scheduler(self, optimizer: torch.optim.Optimizer | None) -> None:
        return None

    def num_batches(self) -> int:
        total = num_windows(self.train_data.shape[1], self.config.train.bptt)
        cap = self.config.train.max_batches
        return total if cap is None else min(total, cap)

    def batches(self, generator: torch.Generator) -> Iterator[Window]:
        self.state = None  # each epoch reads every stream from a zero state
        stream = windows(self.train_data, self.config.train.bptt)
        return itertools.islice(stream, self.num_batches())

    def local_batch(self, batch: Window, world: World) -> tuple[Window, float]:
        """This rank's streams of a global window and their share of the ``B`` streams."""
        if not world.parallel:
            return batch, 1.0
        start, stop = self.streams
        inputs, targets = batch
        return (inputs[start:stop], targets[start:stop]), (stop - start) / inputs.shape[0]

    def global_penalty(self, batch: Window) -> torch.Tensor | None:
        """Data parallel: the tables' penalty of the global window (the same on every rank);
        ``None`` in one process, where :meth:`train_step` includes it."""
        if not self.world.parallel:
            return None
        return self.model.penalty(*batch)

    def train_step(self, batch: Window) -> Step:
        inputs, targets = batch
        step = window_loss(self.model, inputs, targets, self.state, penalty=not self.world.parallel)
        self.state = detach_state(step.state)
        return Step(loss=step.loss, rows=step.tokens, value=step.nll_sum / step.tokens)

    def evaluate(self, split: str) -> dict[str, Any]:
        """``{"perplexity", "loss" (mean NLL, nats), "tokens", "seconds"}`` on ``split``."""
        data = batchify(self.corpus.splits[split], self.config.eval.batch_size)
        first, stop = shard_bounds(data.shape[0], self.world)
        start = time.perf_counter()
        metrics: dict[str, Any] = {"loss": 0.0, "tokens": 0}
        if stop > first:
            local = data[first:stop].to(self.device)
            metrics = evaluate_stream(self.model, local, self.config.train.bptt)
        if self.world.parallel:
            nll, tokens = all_sum(
                [metrics["loss"] * metrics["tokens"], metrics["tokens"]], self.world
            )
            metrics = {"loss": nll / tokens, "tokens": int(tokens)}
            metrics["perplexity"] = perplexity(metrics["loss"])
        metrics["seconds"] = time.perf_counter() - start
        return metrics

    def validate(self) -> dict[str, Any]:
        return {k: v for k, v in self.evaluate("valid").items() if k != "seconds"}
