"""The Transformer NMT as a task of the one loop: an epoch visits the fixed token-budget batches
in a shuffled order; validation is valid token NLL (model selection, mode min) plus greedy BLEU
on the first ``eval.valid_bleu_sentences`` valid sentences (for the curves)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from embedlab.distributed import World
from embedlab.errors import UserError
from embedlab.nmt.average import save_snapshot
from embedlab.nmt.batching import PairBatch
from embedlab.nmt.config import NmtConfig
from embedlab.nmt.data import EncodedSplit, shuffled
from embedlab.nmt.evaluate import bleu_of, token_nll
from embedlab.nmt.model import TransformerNmt
from embedlab.nmt.objective import label_smoothed_nll
from embedlab.nmt.vocab import Vocabulary
from embedlab.training.callbacks import Callback
from embedlab.training.loop import Loop, Mode, Step


class NmtTask:
    """The loop's :class:`~embedlab.training.task.Task` for Transformer NMT.

    A batch is a :class:`~embedlab.nmt.batching.PairBatch`; the step's loss is the
    label-smoothed cross-entropy averaged over the batch's target tokens plus the tables'
    penalties; its logged value (the trace's epoch ``loss``) is the plain NLL per target token,
    comparable with the valid ``loss``. Adam with ``train.adam_betas``; the lr schedule is the
    :class:`~embedlab.nmt.objective.InverseSqrtSchedule` callback. One process only.
    """

    metric = "loss"  # mean valid NLL per target token
    mode: Mode = "min"

    def __init__(
        self,
        *,
        model: TransformerNmt,
        splits: dict[str, EncodedSplit],
        vocab: Vocabulary,
        config: NmtConfig,
    ) -> None:
        self.model, self.splits, self.vocab, self.config = model, splits, vocab, config
        self.device = next(model.parameters()).device
        self.train_batches = splits["train"].batches(config.train.max_tokens)

    def build_optimizer(self) -> torch.optim.Optimizer:
        tc = self.config.train
        return torch.optim.Adam(
            self.model.parameters(), lr=tc.lr, betas=tc.adam_betas, eps=tc.adam_eps,
            weight_decay=tc.weight_decay,
        )  # fmt: skip

    def build_scheduler(self, optimizer: torch.optim.Optimizer | None) -> None:
        return None

    def num_batches(self) -> int:
        cap = self.config.train.max_batches
        total = len(self.train_batches)
        return total if cap is None else min(total, cap)

    def batches(self, generator: torch.Generator) -> Iterator[PairBatch]:
        order = shuffled(self.train_batches, generator)[: self.num_batches()]
        train = self.splits["train"]
        for index in order:
            yield train.collate(index).to(self.device)

    def local_batch(self, batch: PairBatch, world: World) -> tuple[PairBatch, float]:
        if world.parallel:
            raise UserError("nmt: data-parallel training is not implemented; run one process")
        return batch, 1.0

    def global_penalty(self, batch: PairBatch) -> None:
        return None

    def train_step(self, batch: PairBatch) -> Step:
        logits = self.model(batch.source, batch.target_in)  # (B, T, V)
        loss_sum, nll_sum = label_smoothed_nll(
            logits, batch.target_out, self.config.train.label_smoothing
        )
        tokens = batch.target_tokens
        loss = loss_sum / tokens + self.model.penalty(batch.source, batch.target_in)
        return Step(loss=loss, rows=tokens, value=float(nll_sum) / tokens)

    def validate(self) -> dict[str, Any]:
        """``{"loss", "perplexity", "tokens"}`` on valid, and ``bleu`` (greedy, first
        ``eval.valid_bleu_sentences`` sentences) unless that is 0."""
        ec = self.config.eval
        valid = self.splits["valid"]
        metrics: dict[str, Any] = token_nll(self.model, valid, ec.max_tokens, self.device)
        if ec.valid_bleu_sentences:
            scores, _ = bleu_of(
                self.model, valid, self.vocab, ec, self.device,
                limit=ec.valid_bleu_sentences, beam=1,
            )  # fmt: skip
            metrics["bleu_greedy"] = scores["bleu"]
            metrics["bleu_sentences"] = min(ec.valid_bleu_sentences, len(valid))
        return metrics


class EpochSnapshots(Callback):
    """Saves the model after every epoch as ``epoch-NNNN.safetensors`` in ``folder``, keeping
    the newest ``keep`` (the checkpoints that :mod:`embedlab.nmt.average` averages)."""

    def __init__(self, folder: Path, keep: int) -> None:
        self.folder, self.keep = folder, keep

    def on_epoch_end(self, loop: Loop) -> None:
        if loop.world.is_main:
            save_snapshot(self.folder, loop.state.epoch, loop.task.model, keep=self.keep)
