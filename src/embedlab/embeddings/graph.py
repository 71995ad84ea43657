"""A graph over the rows of an embedding table, in CSR form (for SSE-Graph and Laplacian penalties)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RowGraph:
    """An undirected simple graph over ``num_rows`` table rows, stored as CSR.

    Attributes:
        num_rows: N, the rows of the table the graph lives on.
        indptr: ``(N + 1,)`` int64; the neighbours of row j are ``indices[indptr[j]:indptr[j+1]]``.
        indices: ``(2E,)`` int64, sorted within each row; no self loops, no duplicates, symmetric.

    Build with :meth:`from_edges` or :meth:`from_groups`, never by hand.
    """

    num_rows: int
    indptr: torch.Tensor
    indices: torch.Tensor

    @classmethod
    def from_edges(cls, *, num_rows: int, src: torch.Tensor, dst: torch.Tensor) -> RowGraph:
        """Symmetrize an edge list ``src[e] -- dst[e]`` (each ``(E,)`` ints in ``[0, num_rows)``);
        self loops and duplicate edges are dropped.

        Raises:
            ValueError: an endpoint is outside ``[0, num_rows)`` or the shapes differ.
        """
        src = torch.as_tensor(src, dtype=torch.long).reshape(-1)
        dst = torch.as_tensor(dst, dtype=torch.long).reshape(-1)
        if src.shape != dst.shape:
            raise ValueError(f"src {tuple(src.shape)} and dst {tuple(dst.shape)} differ in shape")
        if src.numel() and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= num_rows):
            raise ValueError(f"an edge endpoint lies outside [0, {num_rows})")
        rows = torch.cat([src, dst])
        cols = torch.cat([dst, src])
        keep = rows != cols
        keys = torch.unique(rows[keep] * num_rows + cols[keep])  # sorted: by row, then column
        rows, cols = keys // num_rows, keys % num_rows
        counts = torch.bincount(rows, minlength=num_rows)
        indptr = torch.zeros(num_rows + 1, dtype=torch.long, device=cols.device)
        indptr[1:] = torch.cumsum(counts, 0)
        return cls(num_rows=num_rows, indptr=indptr, indices=cols)

    @classmethod
    def from_groups(cls, labels: torch.Tensor, *, max_edges: int = 50_000_000) -> RowGraph:
        """Rows sharing a group label are connected (one clique per group).

        Args:
            labels: ``(N,)`` int group of each row; a negative label means "no group" (isolated).
            max_edges: refuse cliques that would hold more directed edges than this.

        Raises:
            ValueError: the cliques would exceed ``max_edges``.
        """
        labels = torch.as_tensor(labels, dtype=torch.long)
        num_rows = labels.numel()
        valid = torch.nonzero(labels >= 0).squeeze(1)
        device = labels.device
        sizes = (
            torch.bincount(labels[valid])
            if valid.numel()
            else torch.zeros(0, dtype=torch.long, device=device)
        )
        total = int((sizes * (sizes - 1)).sum())
        if total > max_edges:
            raise ValueError(f"group cliques hold {total} directed edges (> max_edges={max_edges})")
        order = valid[torch.argsort(labels[valid], stable=True)]  # rows grouped by label
        starts = torch.cumsum(sizes, 0) - sizes
        src_parts, dst_parts = [], []
        for start, size in zip(starts.tolist(), sizes.tolist(), strict=True):  # one loop per group
            members = order[start : start + size]
            src_parts.append(members.repeat_interleave(size))
            dst_parts.append(members.repeat(size))
        empty = torch.zeros(0, dtype=torch.long, device=device)
        src = torch.cat(src_parts) if src_parts else empty
        dst = torch.cat(dst_parts) if dst_parts else empty
        return cls.from_edges(num_rows=num_rows, src=src, dst=dst)

    @property
    def degree(self) -> torch.Tensor:
        """``(N,)`` int64 number of neighbours of each row."""
        return self.indptr[1:] - self.indptr[:-1]

    @property
    def num_edges(self) -> int:
        """Undirected edges E."""
        return self.indices.numel() // 2

    def edge_keys(self) -> torch.Tensor:
        """``(2E,)`` sorted keys ``row * N + col`` of the directed edges (for membership tests)."""
        rows = torch.repeat_interleave(self._arange(), self.degree)
        return rows * self.num_rows + self.indices

    def _arange(self) -> torch.Tensor:
        return torch.arange(self.num_rows, device=self.indices.device)

    def laplacian(self) -> torch.Tensor:
        """The combinatorial Laplacian ``L = D - A`` as a sparse COO ``(N, N)`` float32 tensor."""
        n = self.num_rows
        rows = torch.repeat_interleave(self._arange(), self.degree)
        diag = self._arange()
        index = torch.stack([torch.cat([rows, diag]), torch.cat([self.indices, diag])])
        values = torch.cat(
            [-torch.ones(self.indices.numel(), device=diag.device), self.degree.float()]
        )
        return torch.sparse_coo_tensor(index, values, (n, n), check_invariants=True).coalesce()
