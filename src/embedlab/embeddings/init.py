"""Initializers for embedding tables (paper 002, tables 5-6: n, u, xn, xu)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from embedlab.embeddings.config import InitConfig


def _normal(w: torch.Tensor, scale: float) -> None:
    nn.init.normal_(w, mean=0.0, std=scale)


def _uniform(w: torch.Tensor, scale: float) -> None:
    nn.init.uniform_(w, -scale, scale)


def _xavier_normal(w: torch.Tensor, scale: float) -> None:
    nn.init.xavier_normal_(w, gain=scale)


def _xavier_uniform(w: torch.Tensor, scale: float) -> None:
    nn.init.xavier_uniform_(w, gain=scale)


INITIALIZERS: dict[str, Callable[[torch.Tensor, float], None]] = {
    "normal": _normal,
    "uniform": _uniform,
    "xavier_normal": _xavier_normal,
    "xavier_uniform": _xavier_uniform,
}


@torch.no_grad()
def initialize_(weight: torch.Tensor, config: InitConfig) -> None:
    """Fill ``weight`` ``(num_rows, dim)`` in place.

    ``normal``: N(0, scale^2); ``uniform``: U(-scale, scale); ``xavier_*``: torch's Xavier with
    gain ``scale`` (fan_in = dim, fan_out = num_rows, as LibKGE applies it to the table).
    """
    INITIALIZERS[config.name](weight, config.scale)
