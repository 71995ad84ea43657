"""A plain lookup table: index transform -> lookup -> dropout (CONVENTIONS.md #2)."""

from __future__ import annotations

import torch
from torch import nn

from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.init import initialize_
from embedlab.embeddings.lp_penalty import whole_table_lp
from embedlab.embeddings.template import EmbeddingLayer, weighted_lp


class EmbeddingTable(EmbeddingLayer):
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
        super().__init__(num_rows=num_rows, config=config, graph=graph)
        self.dim = dim
        self.weight = nn.Parameter(torch.empty(num_rows, dim))
        initialize_(self.weight, config.init)

    @property
    def num_rows(self) -> int:
        return self.weight.shape[0]

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Rows of the table: ``S`` -> ``S + (dim,)``."""
        return self.weight[indices]

    def lookup_all(self) -> torch.Tensor:
        """Every row, ``(N, dim)``; equals ``lookup(arange(N))`` (a subclass overriding
        :meth:`lookup` overrides this too)."""
        return self.weight

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
            return whole_table_lp(self.weight, p=p, scale=reg.weight)
        unique, counts = torch.unique(indices, return_counts=True)
        return weighted_lp(self.weight[unique], counts, indices.numel(), reg)  # rows (U, dim)
