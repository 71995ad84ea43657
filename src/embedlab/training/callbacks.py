"""Hooks into the one loop (CONVENTIONS.md #12): per-epoch and per-step needs of a method attach
here instead of being copied into a task's own loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from embedlab.training.loop import Loop


class Callback:
    """Base hook: every method is a no-op; override the ones a method needs."""

    def on_epoch_start(self, loop: Loop) -> None:
        """After ``loop.state.epoch`` was incremented (1-based epoch about to train)."""

    def on_batch_start(self, loop: Loop, progress: float) -> None:
        """Before each step; ``progress`` = epochs done so far as a float (0 at the start)."""

    def after_backward(self, loop: Loop) -> None:
        """Between ``loss.backward()`` and ``optimizer.step()`` (autograd tasks only)."""

    def on_epoch_end(self, loop: Loop) -> None:
        """After an epoch's training and its trace event, before its validation and checkpoint
        (e.g. NMT's per-epoch model snapshots for checkpoint averaging)."""

    def epoch_fields(self, loop: Loop, loss: float) -> dict[str, Any]:
        """Extra fields of the trace's ``epoch`` event (``loss``: mean loss per row)."""
        return {}

    def on_trace(self, record: dict[str, Any]) -> None:
        """After each trace record (``event``, ``time``, fields) is written (rank 0 only)."""


class TrainingProgress(Callback):
    """Calls ``hook(model, progress)`` before every step (e.g. KD's temperature schedule:
    ``embedlab.embeddings.set_training_progress``)."""

    def __init__(self, hook: Callable[[torch.nn.Module, float], None]) -> None:
        self.hook = hook

    def on_batch_start(self, loop: Loop, progress: float) -> None:
        self.hook(loop.task.model, progress)


class ClipGradNorm(Callback):
    """Rescales the gradients to global L2 norm at most ``max_norm`` before each step."""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def after_backward(self, loop: Loop) -> None:
        torch.nn.utils.clip_grad_norm_(loop.task.model.parameters(), self.max_norm)


class EpochLearningRate(Callback):
    """Sets every parameter group's lr to ``schedule(epoch)`` (1-based) at each epoch start."""

    def __init__(self, schedule: Callable[[int], float]) -> None:
        self.schedule = schedule

    def on_epoch_start(self, loop: Loop) -> None:
        if loop.optimizer is None:
            return
        lr = self.schedule(loop.state.epoch)
        for group in loop.optimizer.param_groups:
            group["lr"] = lr
