"""The embedding-table template: index transform -> lookup -> dropout (CONVENTIONS.md #2)."""

from __future__ import annotations

import torch
from torch import nn

from embedlab.config import EmbeddingConfig
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.init import initialize_
from embedlab.embeddings.sse import build_sse


class EmbeddingTable(nn.Module):
    """A plain lookup table with SSE, dropout and an explicit penalty.

    Args:
        num_rows: rows N of the table.
        dim: width d of each row.
        config: initializer, SSE, dropout, regularization.
        graph: graph over the rows, required when ``config.sse.kind == "graph"``.

    ``forward(indices, frozen=None)``: ``indices`` of any shape ``S`` -> ``S + (dim,)``; in training
    mode SSE (``config.sse``) first replaces indices (never those where ``frozen`` is True). ``all()`` returns the
    whole table ``(N, dim)`` through the same dropout (LibKGE's ``embed_all``). SSE is a composed
    index transform (:mod:`embedlab.embeddings.sse`); other layers (KD codes) override
    :meth:`lookup` only.
    """

    def __init__(
        self, *, num_rows: int, dim: int, config: EmbeddingConfig, graph: RowGraph | None = None
    ) -> None:
        super().__init__()
        self.config = config
        sse = config.sse
        self.sse = build_sse(num_rows=num_rows, kind=sse.kind, p=sse.p, rho=sse.rho, graph=graph)
        self.weight = nn.Parameter(torch.empty(num_rows, dim))
        initialize_(self.weight, config.init)
        self.dropout = config.dropout

    @property
    def num_rows(self) -> int:
        return self.weight.shape[0]

    def transform_indices(
        self, indices: torch.Tensor, frozen: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Index transform before the lookup: SSE in training mode, else the identity."""
        if self.sse is None:
            return indices
        return self.sse(indices, frozen)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Rows of the table: ``S`` -> ``S + (dim,)``."""
        return self.weight[indices]

    def lookup_all(self) -> torch.Tensor:
        """Every row, ``(N, dim)``; equals ``lookup(arange(N))`` (a subclass overriding
        :meth:`lookup` overrides this too)."""
        return self.weight

    def apply_dropout(self, x: torch.Tensor) -> torch.Tensor:
        """Inverted dropout in training mode, identity in eval mode.

        Same distribution as ``nn.Dropout``; the mask comes from ``rand_like`` (about 2x faster
        than ``bernoulli_`` on CPU, which matters when the whole table is dropped out per batch).
        """
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

    def penalty(self, indices: torch.Tensor) -> torch.Tensor:
        """Regularization term for a batch (a scalar), returned, never accumulated.

        ``lp``: ``weight / p * sum_rows |x|^p`` over the whole table, or, if ``weighted``, over
        the unique rows of ``indices`` weighted by their count and divided by ``indices.numel()``
        (LibKGE's weighted Lp). ``n3`` is ``lp`` with p = 3 on the real coordinates (``p`` is
        then ignored); Lacroix et al. (ICML 2018) apply it to complex moduli, which is not the same
        for ComplEx.
        """
        reg = self.config.regularize
        if reg.kind == "none" or reg.weight == 0.0:
            return self.weight.new_zeros(())
        p = 3 if reg.kind == "n3" else reg.p
        if not reg.weighted:
            return reg.weight / p * self.weight.abs().pow(p).sum()
        unique, counts = torch.unique(indices, return_counts=True)
        rows = self.weight[unique].abs().pow(p)  # (U, dim)
        return reg.weight / p * (rows * counts.unsqueeze(1)).sum() / indices.numel()
