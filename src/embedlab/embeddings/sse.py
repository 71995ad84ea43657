"""Stochastic Shared Embeddings: SSE-SE and SSE-Graph index transforms.

Wu, Li, Hsieh, Sharpnack, "SSE: Stochastic Shared Embeddings", NeurIPS 2019 (papers 000/001 in
``shared/papers``). During training, each looked-up index ``j`` is replaced by an index ``k`` drawn
from a transition kernel ``p(j, k | Φ)``; the label is kept. Under ``eval()`` the transform is the
identity. No parameters: the transform only changes which rows are looked up (and so which rows
receive the gradient).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from embedlab.embeddings.graph import RowGraph

_MAX_FIXED_POINT_ROUNDS = 10_000
_REJECTION_ROUNDS = 4


def _bernoulli_positions(
    size: int, p: float, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """Sorted positions in ``[0, size)`` each selected independently with probability ``p``.

    Gaps between selected positions are Geometric(p), so this costs O(p * size) draws instead
    of one uniform per position (SSE's p is typically 0.001-0.1).
    """
    if p >= 1.0:
        return torch.arange(size, device=device)
    chunks, reach = [], -1
    expect = size * p
    while reach < size - 1:
        count = int(expect + 6 * math.sqrt(expect * (1 - p)) + 16)
        gaps = torch.empty(count, dtype=torch.float64, device=device)
        gaps.geometric_(p, generator=generator).clamp_min_(1)  # float64: exact small gaps
        steps = torch.cumsum(gaps.long(), 0) + reach  # positions: previous reach + gaps
        chunks.append(steps)
        reach = int(steps[-1])
    positions = torch.cat(chunks)
    return positions[positions < size]


class SseIndexTransform(nn.Module):
    """The SSE index transform for one table of ``num_rows`` rows.

    Kernel (what one call samples, independently for every index ``j``)::

        p(j, j)  = 1 - p
        p(j, k)  = p * w(j, k) / W(j)            for k != j
        w(j, k)  = rho if k is a graph neighbour of j else 1,
        W(j)     = rho * deg(j) + (N - 1 - deg(j))

    This is the paper's SSE-Graph transition probability ``p(j, k | Φ)`` with ``Φ = (p0, rho)``:
    ``p(j, j) = 1 - p0`` and the replacement mass ``p0`` spread over the other rows with weight
    ``rho`` on graph edges and 1 elsewhere. ``rho -> inf``: neighbours only (a row without
    neighbours is then never replaced); ``rho = 1`` or a complete graph: SSE-SE,
    ``p(j, k) = p / (N - 1)``. Without a graph (``graph=None``) the transform is SSE-SE.

    ``p`` is the *replacement* probability. The authors' code (github.com/wuliwei9278/SSE)
    exposes the *keep* probability ``1 - p`` instead, and its SSE-SE draws the replacement from
    all ``N`` rows (``j`` itself included), so its effective replacement rate is ``p (1 - 1/N)``;
    here the replacement is always another row, so the observed replacement rate is exactly ``p``.

    Args:
        num_rows: N, rows of the table.
        p: replacement probability in ``[0, 1]``.
        graph: a :class:`RowGraph` over the same rows for SSE-Graph; ``None`` for SSE-SE.
        rho: neighbour weight ``rho > 0`` (``math.inf`` allowed); ignored without a graph.

    ``forward(indices, frozen=None, generator=None)``: ``indices`` int64 of any shape ``S`` ->
    int64 ``S``. ``frozen`` (bool, shape ``S``) marks indices never to replace (the authors leave
    BPR negatives alone). ``generator`` is a ``torch.Generator`` on ``indices.device``; ``None`` uses
    the global RNG (so a run's seed and its checkpointed RNG state make it reproducible).
    Identity in eval mode, when ``p == 0`` or when ``N < 2``.

    Raises:
        ValueError: ``p`` outside [0, 1], ``rho <= 0``, or a graph over a different row count.
    """

    indptr: torch.Tensor
    neighbours: torch.Tensor
    degree: torch.Tensor
    edge_keys: torch.Tensor

    def __init__(
        self, *, num_rows: int, p: float, graph: RowGraph | None = None, rho: float = 1.0
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"SSE replacement probability p={p} is not in [0, 1]")
        if not rho > 0:
            raise ValueError(f"SSE-Graph rho={rho} must be > 0")
        if graph is not None and graph.num_rows != num_rows:
            raise ValueError(f"graph has {graph.num_rows} rows, the table {num_rows}")
        self.num_rows = num_rows
        self.p = p
        self.rho = rho
        self.has_graph = graph is not None
        empty = torch.zeros(0, dtype=torch.long)
        self.register_buffer("indptr", graph.indptr if graph else empty, persistent=False)
        self.register_buffer("neighbours", graph.indices if graph else empty, persistent=False)
        self.register_buffer("degree", graph.degree if graph else empty, persistent=False)
        self.register_buffer("edge_keys", graph.edge_keys() if graph else empty, persistent=False)

    def extra_repr(self) -> str:
        kind = f"graph, rho={self.rho}" if self.has_graph else "se"
        return f"num_rows={self.num_rows}, p={self.p}, {kind}"

    def forward(
        self,
        indices: torch.Tensor,
        frozen: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        if not self.training or self.p == 0.0 or self.num_rows < 2:
            return indices
        if indices.numel() == 0:
            return indices
        flat = indices.reshape(-1).long()  # int64: keys row * N + col overflow int32
        positions = _bernoulli_positions(flat.numel(), self.p, flat.device, generator)  # (M,)
        if frozen is not None:
            if frozen.dtype != torch.bool or frozen.shape != indices.shape:
                raise ValueError("frozen must be a bool tensor shaped like indices")
            positions = positions[~frozen.reshape(-1)[positions]]
        if positions.numel() == 0:
            return indices
        rows = flat[positions]
        if self.has_graph:
            new = self._sample_graph(rows, generator)
        else:
            new = _uniform_other(rows, self.num_rows, generator)
        out = flat.clone()
        out[positions] = new
        return out.reshape(indices.shape).to(indices.dtype)

    def _sample_graph(self, rows: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Draw ``k ~ w(j, .) / W(j)`` for each ``j`` in ``rows`` ``(M,)`` -> ``(M,)``."""
        n = self.num_rows
        deg = self.degree[rows]  # (M,)
        others = n - 1 - deg  # non-neighbours other than j
        if math.isinf(self.rho):
            share = (deg > 0).to(torch.float32)
        else:
            share = self.rho * deg / (self.rho * deg + others).clamp_min(1)
        u = torch.rand((2, rows.numel()), device=rows.device, generator=generator)
        to_neighbour = u[0] < share
        out = rows.clone()
        # a neighbour, uniformly: the (floor(u * deg))-th entry of the row's CSR slice
        nb = torch.nonzero(to_neighbour).squeeze(1)
        if nb.numel():
            offset = (u[1, nb] * deg[nb]).long().clamp_max(deg[nb] - 1)
            out[nb] = self.neighbours[self.indptr[rows[nb]] + offset]
        # a non-neighbour, uniformly (rows whose every other row is a neighbour keep j)
        far = torch.nonzero(~to_neighbour & (others > 0)).squeeze(1)
        if far.numel() and not math.isinf(self.rho):
            out[far] = self._non_neighbour(rows[far], others[far], generator)
        return out

    def _non_neighbour(
        self, rows: torch.Tensor, others: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """A row drawn uniformly outside ``{j} ∪ N(j)`` for each ``j`` in ``rows`` ``(M,)``.

        A few rounds of rejection (a uniform other row, kept unless it is a neighbour: cheap when
        neighbourhoods are small), then the exact draw for whatever is left.
        """
        n = self.num_rows
        out = torch.empty_like(rows)
        todo = torch.arange(rows.numel(), device=rows.device)
        for _ in range(_REJECTION_ROUNDS):
            cand = _uniform_other(rows[todo], n, generator)
            key = rows[todo] * n + cand
            at = torch.searchsorted(self.edge_keys, key).clamp_max(self.edge_keys.numel() - 1)
            hit = (
                self.edge_keys[at] == key
                if self.edge_keys.numel()
                else torch.zeros_like(key, dtype=torch.bool)
            )
            out[todo[~hit]] = cand[~hit]
            todo = todo[hit]
            if todo.numel() == 0:
                return out
        r = torch.rand(todo.shape, device=rows.device, generator=generator)
        r = (r * others[todo]).long().clamp_max(others[todo] - 1)
        out[todo] = self._rth_non_neighbour(rows[todo], r)
        return out

    def _rth_non_neighbour(self, rows: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """The ``r``-th (0-based) row outside ``{j} ∪ N(j)`` for each ``j`` in ``rows``, exactly.

        Fixed point ``k <- r + #{e in {j} ∪ N(j) : e <= k}`` (monotone; stops at the answer),
        iterated on all unfinished entries at once, the counts by binary search in the sorted
        edge keys ``j * N + e``.
        """
        n = self.num_rows
        start = self.indptr[rows]
        k = r.clone()
        for _ in range(_MAX_FIXED_POINT_ROUNDS):
            below = torch.searchsorted(self.edge_keys, rows * n + k, right=True) - start
            nxt = r + below + (rows <= k).long()
            if torch.equal(nxt, k):
                return k
            k = nxt
        raise RuntimeError("SSE-Graph non-neighbour draw did not converge")  # pragma: no cover


def _uniform_other(rows: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """For each ``j`` in ``rows`` ``(M,)``, a row drawn uniformly from the other ``n - 1``."""
    r = torch.randint(0, n - 1, rows.shape, device=rows.device, generator=generator)
    return r + (r >= rows).long()


def build_sse(
    *, num_rows: int, kind: str, p: float, rho: float, graph: RowGraph | None
) -> SseIndexTransform | None:
    """The transform a table's ``sse`` config asks for (``None`` for ``kind == "none"``).

    Raises:
        ValueError: ``kind == "graph"`` without a graph, or an unknown kind.
    """
    if kind == "none":
        return None
    if kind == "se":
        return SseIndexTransform(num_rows=num_rows, p=p)
    if kind == "graph":
        if graph is None:
            raise ValueError("SSE-Graph needs a graph over the table's rows")
        return SseIndexTransform(num_rows=num_rows, p=p, graph=graph, rho=rho)
    raise ValueError(f"unknown SSE kind {kind!r} (none, se, graph)")
