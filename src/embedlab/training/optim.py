"""Optimizers and the plateau learning-rate scheduler (one registry for every autograd task)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import torch

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
    "sgd": torch.optim.SGD,
}


def build_optimizer(
    params: Iterable[torch.nn.Parameter], *, name: str, lr: float
) -> torch.optim.Optimizer:
    """``OPTIMIZERS[name](params, lr=lr)``."""
    return OPTIMIZERS[name](params, lr=lr)


def build_plateau_scheduler(
    optimizer: torch.optim.Optimizer, *, factor: float, patience: int, mode: Literal["max", "min"]
) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """ReduceLROnPlateau on the validation metric: paper 002's "decay 0.95, patience k".

    ``factor = 1`` means no decay (returns None). ``mode``: ``max`` for MRR, ``min`` for
    RMSE/perplexity.
    """
    if factor == 1.0:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=factor, patience=patience
    )
