"""Optimizers and the learning-rate scheduler from a :class:`TrainConfig`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from embedlab.kge.config import TrainConfig

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
}


def build_optimizer(
    params: Iterable[torch.nn.Parameter], config: TrainConfig
) -> torch.optim.Optimizer:
    return OPTIMIZERS[config.optimizer](params, lr=config.lr)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """ReduceLROnPlateau on validation MRR (mode max): paper 002's "decay 0.95, patience k".

    ``lr_decay = 1`` means no decay (returns None).
    """
    if config.lr_decay == 1.0:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.lr_decay, patience=config.lr_patience
    )
