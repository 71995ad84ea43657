"""What one train step returns (:class:`Step`), shared by the loop, the tasks and DDP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Step:
    """What one train step returns.

    Attributes:
        loss: the scalar to back-propagate (autograd tasks), or the step's loss value as a
            tensor without history (tasks that update parameters themselves: MF's SGD, ALS).
        rows: training rows the step scored (triples, ratings, tokens), for throughput.
        value: per-row mean loss for the trace (``None``: ``float(loss)``).
    """

    loss: torch.Tensor
    rows: int
    value: float | None = None


TrainStep = Callable[[Any], Step]
GlobalPenalty = Callable[[Any], torch.Tensor | None]
