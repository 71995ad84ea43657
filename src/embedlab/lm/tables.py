"""The two embedding tables of the LM, built through the package's one embedding registry.

``embedlab.embeddings.build_embedding`` (lookup, SSE, KD codes) builds every table; the KD hooks
``set_training_progress`` (temperature annealing) and ``compression_report`` live beside it. Each
is looked up by name so that this module works with and without KD codes installed.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import torch
from torch import nn

from embedlab import embeddings
from embedlab.config import EmbeddingConfig
from embedlab.errors import UserError


class EmbeddingLike(Protocol):
    """What the LM uses of an embedding layer (CONVENTIONS.md #2)."""

    @property
    def num_rows(self) -> int: ...

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        """``S`` int64 -> ``S + (dim,)``: SSE (training) -> lookup or KD composition -> dropout."""
        ...

    def all(self) -> torch.Tensor:
        """The whole table ``(N, dim)`` (no SSE)."""
        ...

    def penalty(self, indices: torch.Tensor) -> torch.Tensor:
        """Scalar regularization of a batch (KD entropy/distillation terms included)."""
        ...


def build_table(
    *, num_rows: int, dim: int, config: EmbeddingConfig, teacher: torch.Tensor | None
) -> nn.Module:
    """One embedding layer ``(num_rows, dim)``; ``teacher``: a pre-trained ``(num_rows, dim)`` table.

    Raises:
        UserError: KD codes or a teacher asked where ``build_embedding`` is not available.
    """
    build = getattr(embeddings, "build_embedding", None)
    if build is not None:
        return cast(nn.Module, build(num_rows=num_rows, dim=dim, config=config, teacher=teacher))
    # TODO(kd.py): remove this fallback once embedlab.embeddings.build_embedding exists.
    if config.kind != "lookup" or teacher is not None:
        raise UserError(
            f"kind={config.kind!r} / train.init_from need embedlab.embeddings.build_embedding "
            "(KD codes), which this installation does not have yet"
        )
    return embeddings.EmbeddingTable(num_rows=num_rows, dim=dim, config=config)


def as_table(module: nn.Module) -> EmbeddingLike:
    """``module`` typed as an embedding layer."""
    return cast(EmbeddingLike, module)


def set_training_progress(model: nn.Module, epoch: float) -> None:
    """Tell KD layers the fractional epoch (it anneals their temperatures); no-op without KD."""
    hook = getattr(embeddings, "set_training_progress", None)
    if hook is not None:
        hook(model, epoch)


def compression_report(model: nn.Module) -> dict[str, Any] | None:
    """``embedlab.embeddings.compression_report(model)``, or ``None`` where it does not exist."""
    report = getattr(embeddings, "compression_report", None)
    return None if report is None else dict(report(model))
