"""The NMT training objective (the model returns logits; the loss lives here) and the
inverse-square-root learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from embedlab.nmt.vocab import PAD
from embedlab.training.callbacks import Callback
from embedlab.training.loop import Loop


def label_smoothed_nll(
    logits: torch.Tensor, targets: torch.Tensor, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed label-smoothed cross-entropy and summed NLL over the non-padding targets.

    ``logits (B, T, V)``, ``targets (B, T)``. The smoothed target puts ``1 - eps + eps / V`` on
    the reference token and ``eps / V`` on every other one (Szegedy et al. 2016; torch's
    ``label_smoothing``, fairseq's ``label_smoothed_cross_entropy`` up to its ``eps / (V - 1)``):
    ``loss = (1 - eps) * nll + eps * mean_v(-log p_v)``. Positions whose target is ``<pad>``
    count for nothing.

    Returns:
        ``(loss_sum, nll_sum)``, scalars; only ``loss_sum`` is to be back-propagated.
    """
    flat = logits.reshape(-1, logits.shape[-1]).float()  # (B*T, V)
    gold = targets.reshape(-1)  # (B*T,)
    # one log-softmax for both sums (two cross_entropy calls computed it twice: ~8% of a
    # Multi30K training step at 8,000 classes)
    log_p = F.log_softmax(flat, dim=-1)  # (B*T, V)
    nll = F.nll_loss(log_p, gold, ignore_index=PAD, reduction="sum")
    if smoothing == 0.0:
        return nll, nll.detach()
    # sum over non-padding tokens of mean_v(-log p_v); masked_fill, not a 0/1 product, so that a
    # padding row with a -inf logit adds 0 rather than nan (as torch's own reduction)
    per_token = log_p.sum(dim=-1).masked_fill(gold == PAD, 0.0)  # (B*T,)
    uniform = -per_token.sum() / log_p.shape[-1]
    return (1.0 - smoothing) * nll + smoothing * uniform, nll.detach()


def inverse_sqrt(step: int, *, lr: float, warmup_steps: int) -> float:
    """lr of 1-based ``step``: ``lr * min(step / warmup, sqrt(warmup / step))`` (fairseq's
    ``inverse_sqrt`` with a linear warm-up from 0; equal to Vaswani et al.'s ``d^-0.5 *
    min(step^-0.5, step * warmup^-1.5)`` for ``lr = (d * warmup)^-0.5``)."""
    return lr * min(step / warmup_steps, math.sqrt(warmup_steps / step))


class InverseSqrtSchedule(Callback):
    """Sets the lr before every step. The step count is derived from the loop's progress
    (``(epoch - 1) * batches_per_epoch + index + 1``), so a resumed run continues the schedule
    without state of its own; the batches of an epoch are fixed (token-budget batches)."""

    def __init__(self, *, lr: float, warmup_steps: int, batches_per_epoch: int) -> None:
        self.lr, self.warmup, self.per_epoch = lr, warmup_steps, max(1, batches_per_epoch)

    def on_batch_start(self, loop: Loop, progress: float) -> None:
        if loop.optimizer is None:
            return
        step = round(progress * self.per_epoch) + 1
        value = inverse_sqrt(step, lr=self.lr, warmup_steps=self.warmup)
        for group in loop.optimizer.param_groups:
            group["lr"] = value
