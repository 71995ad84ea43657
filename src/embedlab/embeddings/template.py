"""The embedding-layer template shared by every table kind (CONVENTIONS.md #2).

``forward(indices)`` = index transform (SSE) -> lookup (plain rows, KD-code composition) ->
dropout, in that order. A subclass implements :meth:`lookup`, :meth:`lookup_all`,
:meth:`penalty` and :attr:`num_rows` only.
"""

from __future__ import annotations

import torch
from torch import nn

from embedlab.embeddings.config import EmbeddingConfig, RegularizeConfig
from embedlab.embeddings.fast_dropout import dropout16
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.sse import build_sse


def weighted_lp(
    rows: torch.Tensor, counts: torch.Tensor, num_indices: int, reg: RegularizeConfig
) -> torch.Tensor:
    """LibKGE's weighted Lp of a batch: ``weight / p * sum_u count_u |x_u|^p / num_indices``
    over the unique rows ``rows (U, d)`` with their ``counts (U,)`` (``n3``: p = 3)."""
    p = 3 if reg.kind == "n3" else reg.p
    return reg.weight / p * (rows.abs().pow(p) * counts.unsqueeze(1)).sum() / num_indices


def _low_precision(x: torch.Tensor) -> bool:
    """Whether ``x`` is fp32 under bf16 autocast on its device (the bf16 training step)."""
    kind = x.device.type
    return (
        x.dtype == torch.float32
        and torch.is_autocast_enabled(kind)
        and torch.get_autocast_dtype(kind) == torch.bfloat16
    )


class EmbeddingLayer(nn.Module):
    """Base of :class:`~embedlab.embeddings.lookup.EmbeddingTable` and
    :class:`~embedlab.embeddings.kd.KdEmbedding`.

    Args:
        num_rows: rows N. config: SSE and dropout are read here; the rest by the subclass.
        graph: graph over the rows, required when ``config.sse.kind == "graph"``.

    ``forward(indices, frozen=None)``: ``indices`` of any shape ``S`` -> ``S + (dim,)``; in
    training mode SSE first replaces indices (never those where ``frozen`` is True). ``all()``
    returns the whole table ``(N, dim)`` through the same dropout (LibKGE's ``embed_all``).
    """

    dim: int  # width d of a row

    def __init__(
        self, *, num_rows: int, config: EmbeddingConfig, graph: RowGraph | None = None
    ) -> None:
        super().__init__()
        self.config = config
        sse = config.sse
        self.sse = build_sse(num_rows=num_rows, kind=sse.kind, p=sse.p, rho=sse.rho, graph=graph)
        self.dropout = config.dropout

    @property
    def num_rows(self) -> int:
        raise NotImplementedError

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Rows of the table: ``S`` -> ``S + (dim,)``."""
        raise NotImplementedError

    def lookup_all(self) -> torch.Tensor:
        """Every row, ``(N, dim)``; equals ``lookup(arange(N))``."""
        raise NotImplementedError

    def penalty(self, indices: torch.Tensor) -> torch.Tensor:
        """Regularization term for a batch (a scalar), returned, never accumulated."""
        raise NotImplementedError

    def transform_indices(
        self, indices: torch.Tensor, frozen: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Index transform before the lookup: SSE in training mode, else the identity."""
        if self.sse is None:
            return indices
        return self.sse(indices, frozen)

    def apply_dropout(self, x: torch.Tensor) -> torch.Tensor:
        """Inverted dropout in training mode, identity in eval mode.

        Same distribution as ``nn.Dropout``; the mask comes from ``rand_like`` (about 2x faster
        than ``bernoulli_`` on CPU, which matters when the whole table is dropped out per batch).
        Under bf16 autocast an fp32 ``x`` is dropped out from 16-bit uniforms in one compiled
        pass instead (:mod:`embedlab.embeddings.fast_dropout`: keep probability ``1 - p`` to
        ``2^-17``, expected value unchanged).
        """
        if self.training and self.dropout and _low_precision(x):
            return dropout16(x, self.dropout)
        mask = self.dropout_mask(x)
        return x if mask is None else x * mask

    def dropout_mask(self, like: torch.Tensor) -> torch.Tensor | None:
        """The inverted-dropout multiplier for a tensor shaped like ``like``: ``keep / (1 - p)``
        with ``keep ~ Bernoulli(1 - p)``; ``None`` in eval mode or when ``p == 0`` (hand-written
        gradients, e.g. SGD-MF, multiply by the same mask)."""
        p = self.dropout
        if not self.training or p == 0.0:
            return None
        keep = torch.rand_like(like) >= p
        return keep.to(like.dtype) * (1.0 / (1.0 - p))

    def forward(self, indices: torch.Tensor, frozen: torch.Tensor | None = None) -> torch.Tensor:
        return self.apply_dropout(self.lookup(self.transform_indices(indices, frozen)))

    def all(self) -> torch.Tensor:
        """The full table ``(N, dim)`` after dropout (no index transform)."""
        return self.apply_dropout(self.lookup_all())
