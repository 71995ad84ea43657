"""A row-wise sharded lookup table (``<table>_embedding.sharding: row_wise``) over TorchRec.

Each rank of a data-parallel job stores rows ``[start, stop)`` of the ``(N, d)`` table and their
optimizer state; FBGEMM's fused kernel (EXACT_SGD / EXACT_ADAGRAD) updates them. The table is
an :class:`~embedlab.embeddings.template.EmbeddingLayer`, so SSE and dropout are the template's.

Collectives: every rank must make the same sequence of calls to :meth:`lookup` (and everything
built on it: ``forward``, ``all``, :meth:`lookup_all`, :meth:`penalty`), :meth:`step`,
:meth:`full_weight` and ``state_dict()`` (the index counts may differ, zero included).
Evaluation that splits queries unevenly over ranks runs inside :func:`replicated`.

Gradients do not flow into TorchRec during ``loss.backward()``: a lookup returns rows that
record their gradient, and :meth:`step` (collective, once per training step, after backward)
sends the sum of the recorded gradients of each row, divided by the world size, to the row's
owner in one fused update. So a step with several lookups (``score_tails`` looks up the heads
and the whole table) is one optimizer update with the summed gradient, exactly
``torch.optim.SGD`` / ``Adagrad`` on a dense table; and the gradient is the *mean* over ranks,
as DDP's all-reduce: with each rank's loss scaled as the loop scales it for DDP, dense and
sharded parameters see the same global gradient.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.init import initialize_
from embedlab.embeddings.template import EmbeddingLayer, weighted_lp
from embedlab.embeddings.torchrec_backend import (
    CPU,
    FUSED_OPTIMIZERS,
    RowWiseTable,
    build_row_wise,
    require_torchrec,
)
from embedlab.errors import UserError

OPTIMIZER_STATE = "optimizer_state."  # state-dict key infix of the fused optimizer's state


def _check_buildable(config: EmbeddingConfig, optimizer: str, lr: float) -> None:
    """What the fused CPU kernels and the collectives allow (raises UserError / ValueError)."""
    reg = config.regularize
    if reg.kind != "none" and reg.weight > 0 and not reg.weighted:
        raise UserError(
            f"regularize.kind={reg.kind} with weighted=false penalizes the whole table every "
            "step, which a row-wise sharded table cannot do without gathering it; set "
            "regularize.weighted=true (batch rows only) or sharding=none"
        )
    if optimizer == "adam":
        raise UserError(
            "train.optimizer=adam: FBGEMM's CPU kernels have no fused Adam for sharded tables "
            "('Optimizer adam is not supported in CPU mode'); use adagrad or sgd, or sharding=none"
        )
    if optimizer not in FUSED_OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}: expected one of {sorted(FUSED_OPTIMIZERS)}")
    if lr <= 0:
        raise ValueError(f"a sharded table needs the training learning rate (> 0), got {lr}")
    if not (dist.is_available() and dist.is_initialized()):
        raise UserError(
            "sharding=row_wise needs torch.distributed initialized (launch with torchrun, "
            "--nproc-per-node 1 or more); without it use sharding=none"
        )
    require_torchrec()


class ShardedEmbeddingTable(EmbeddingLayer):
    """A plain ``(N, d)`` table sharded row-wise over the ranks (CPU, gloo).

    Args:
        num_rows: rows N (at least the world size). dim: width d.
        config: initializer, SSE, dropout, regularization (``lp``/``n3`` must be weighted).
        graph: graph over the rows for SSE-Graph.
        optimizer: ``sgd`` or ``adagrad`` (embedlab's names; the fused EXACT_SGD /
            EXACT_ADAGRAD kernels, Adagrad with torch's eps 1e-10). lr: its learning rate.

    The full table is initialized by ``config.init`` from the global RNG (as
    :class:`~embedlab.embeddings.lookup.EmbeddingTable`, so the same seed gives the same rows),
    rank 0's copy is broadcast, and each rank keeps its rows.

    The sharded rows are not parameters of this module (``parameters()`` is empty but for
    SSE/graph tensors): a dense optimizer, DDP and ``clip_grad_norm_`` must not touch them; the
    fused optimizer (:attr:`fused_optimizer`) updates them in :meth:`step`.

    Raises:
        UserError: ``torch.distributed`` not initialized; TorchRec missing (names the make
            target); ``optimizer`` adam (no fused CPU kernel); unweighted ``lp``/``n3``; fewer
            rows than ranks.
        ValueError: an unknown optimizer name or ``lr <= 0``.
    """

    def __init__(
        self,
        *,
        num_rows: int,
        dim: int,
        config: EmbeddingConfig,
        graph: RowGraph | None = None,
        optimizer: str,
        lr: float,
    ) -> None:
        _check_buildable(config, optimizer, lr)
        if num_rows < dist.get_world_size():
            raise UserError(
                f"a row-wise sharded table of {num_rows} rows over {dist.get_world_size()} "
                "ranks: need at least one row per rank"
            )
        super().__init__(num_rows=num_rows, config=config, graph=graph)
        self.dim = dim
        full = torch.empty(num_rows, dim, device=CPU)
        initialize_(full, config.init)
        dist.broadcast(full, src=0)
        # a plain attribute, not a submodule: the shards are no parameters of this module
        self._rows: RowWiseTable = build_row_wise(
            num_rows=num_rows, dim=dim, optimizer=optimizer, lr=lr
        )
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []  # (ids (M,), grads (M, d))
        self._replica: torch.Tensor | None = None  # the full table inside replicated()
        self.load_full_weight(full)

    @property
    def num_rows(self) -> int:
        return self._rows.num_rows

    def row_range(self) -> tuple[int, int]:
        """This rank's rows ``[start, stop)``."""
        return self._rows.start, self._rows.stop

    @property
    def fused_optimizer(self) -> torch.optim.Optimizer:
        """TorchRec's ``KeyedOptimizer`` over the shards: a ``ReduceLROnPlateau`` may drive it;
        a new ``param_groups[0]["lr"]`` is used from the next :meth:`step` on (see
        :meth:`set_lr`)."""
        optimizer: torch.optim.Optimizer = self._rows.fused_optimizer
        return optimizer

    def set_lr(self, lr: float) -> None:
        """Learning rate of the fused kernel from the next :meth:`step` on."""
        for group in self.fused_optimizer.param_groups:
            group["lr"] = lr

    # -- lookups (collective) ---------------------------------------------------------------

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Collective: rows of the table, ``S`` -> ``S + (dim,)`` (CPU).

        With grad mode on, the rows require grad and record their gradient during backward
        for :meth:`step`. Inside :func:`replicated`, a local read of the full copy (no
        collective, no gradient).

        Raises:
            IndexError: an index outside ``[0, N)``.
        """
        flat = indices.reshape(-1).long().contiguous()  # (M,): FBGEMM reads raw memory
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= self.num_rows):
            raise IndexError(f"row index out of range [0, {self.num_rows})")
        if self._replica is not None:
            return self._replica[indices]
        with torch.no_grad():
            rows = self._rows.lookup(flat)  # (M, d)
        if torch.is_grad_enabled():
            rows.requires_grad_(True)
            rows.register_hook(partial(self._record, flat))
        return rows.view(*indices.shape, self.dim)

    def _record(self, ids: torch.Tensor, grad: torch.Tensor) -> None:
        self._pending.append((ids, grad.detach().reshape(-1, self.dim)))

    def lookup_all(self) -> torch.Tensor:
        """Collective: every row ``(N, dim)``, = ``lookup(arange(N))``. This materializes the
        whole table on every rank (transiently, with its gradient)."""
        if self._replica is not None:
            return self._replica
        return self.lookup(torch.arange(self.num_rows, device=CPU))

    def penalty(self, indices: torch.Tensor) -> torch.Tensor:
        """Regularization of a batch (a scalar): zero for ``kind: none``; else the weighted
        ``lp``/``n3`` of the unique rows of ``indices`` (looked up: collective), as
        :meth:`EmbeddingTable.penalty`."""
        reg = self.config.regularize
        if reg.kind == "none" or reg.weight == 0.0:
            return torch.zeros((), device=CPU)
        unique, counts = torch.unique(indices, return_counts=True)
        return weighted_lp(self.lookup(unique), counts, indices.numel(), reg)  # rows (U, dim)

    # -- the update (collective) ------------------------------------------------------------

    def step(self) -> None:
        """Collective, once per training step after backward: one fused update of every row
        with ``sum over lookups and ranks of its gradient / world_size``; then forgets them.

        A rank without recorded gradients still calls it (it sends none)."""
        pending, self._pending = self._pending, []
        if pending:
            ids, grads = torch.cat([i for i, _ in pending]), torch.cat([g for _, g in pending])
        else:
            ids = torch.zeros(0, dtype=torch.long, device=CPU)  # (M,)
            grads = torch.zeros(0, self.dim, device=CPU)  # (M, d)
        unique, inverse = torch.unique(ids, return_inverse=True)  # (U,), (M,)
        summed = grads.new_zeros(len(unique), self.dim).index_add_(0, inverse, grads)  # (U, d)
        self._rows.apply_gradients(unique, summed / dist.get_world_size())

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Also forgets the recorded gradients without updating (a skipped step). Local."""
        super().zero_grad(set_to_none)
        self._pending = []

    # -- whole-table access -------------------------------------------------------------------

    def full_weight(self) -> torch.Tensor:
        """Collective: the full table ``(N, d)`` (a new CPU tensor) on every rank."""
        return self._rows.gather(self._rows.local_weight().detach().clone())

    @torch.no_grad()
    def load_full_weight(self, weight: torch.Tensor) -> None:
        """Copy this rank's rows of ``weight (N, d)`` into its shard (local, no collective).

        Raises:
            ValueError: ``weight`` is not ``(N, d)``.
        """
        _check_shape(weight, (self.num_rows, self.dim), "weight")
        start, stop = self.row_range()
        self._rows.local_weight().copy_(weight[start:stop])

    def full_optimizer_state(self) -> dict[str, torch.Tensor]:
        """Collective: the fused optimizer's state, full-size (Adagrad: ``momentum1`` ``(N,
        d)``; SGD: empty)."""
        states = self._rows.local_optimizer_states()
        return {name: self._rows.gather(local.detach().clone()) for name, local in states.items()}

    # -- checkpoints ----------------------------------------------------------------------------

    def _save_to_state_dict(
        self, destination: dict[str, Any], prefix: str, keep_vars: bool
    ) -> None:
        """``state_dict()`` is collective: ``<prefix>weight`` (the full table) and
        ``<prefix>optimizer_state.<name>`` (full-size fused optimizer state), plain tensors."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight"] = self.full_weight()
        for name, value in self.full_optimizer_state().items():
            destination[prefix + OPTIMIZER_STATE + name] = value

    def _load_from_state_dict(
        self,
        state_dict: Mapping[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Loads this rank's rows of ``<prefix>weight`` and of the optimizer state (local).
        ``weight`` is required; optimizer state is optional (a checkpoint of an unsharded
        table has none: the state stays as it is)."""
        mine = {prefix + "weight"} | {
            k for k in state_dict if k.startswith(prefix + OPTIMIZER_STATE)
        }
        rest = {k: v for k, v in state_dict.items() if k not in mine}
        super()._load_from_state_dict(
            rest, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        start, stop = self.row_range()
        targets = {prefix + "weight": self._rows.local_weight()} | {
            prefix + OPTIMIZER_STATE + name: local
            for name, local in self._rows.local_optimizer_states().items()
        }
        for key, local in targets.items():
            if key not in state_dict:
                if key == prefix + "weight":
                    missing_keys.append(key)
                continue
            value = state_dict[key]
            if tuple(value.shape) != (self.num_rows, *local.shape[1:]):
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(value.shape)}, "
                    f"the sharded table is {(self.num_rows, *local.shape[1:])}"
                )
                continue
            with torch.no_grad():
                local.copy_(value[start:stop])
        if strict:
            unexpected_keys.extend(sorted(k for k in mine - targets.keys() if k in state_dict))


def _check_shape(tensor: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {shape}")


def sharded_layers(module: nn.Module) -> dict[str, ShardedEmbeddingTable]:
    """The row-wise sharded tables under ``module``, by qualified name (``"entities"``)."""
    return {n: m for n, m in module.named_modules() if isinstance(m, ShardedEmbeddingTable)}


def sharded_parameter_names(module: nn.Module) -> set[str]:
    """Qualified names of the parameters and buffers under sharded tables (SSE/graph tensors;
    the shards themselves are no parameters): to leave out of DDP
    (``DistributedDataParallel._set_params_and_buffers_to_ignore_for_model``) and the dense
    optimizer."""
    names: set[str] = set()
    for layer_name, layer in sharded_layers(module).items():
        prefix = f"{layer_name}." if layer_name else ""
        names |= {prefix + n for n, _ in layer.named_parameters()}
        names |= {prefix + n for n, _ in layer.named_buffers()}
    return names


def step_sharded(module: nn.Module) -> None:
    """Collective: :meth:`ShardedEmbeddingTable.step` of every sharded table under ``module``
    (in :func:`sharded_layers` order, the same on every rank)."""
    for layer in sharded_layers(module).values():
        layer.step()


@contextmanager
def replicated(module: nn.Module) -> Iterator[None]:
    """Inside: each sharded table under ``module`` reads a full local copy (gathered on entry,
    collective), so lookups are local, need no matching calls across ranks and record no
    gradient (evaluation with queries split unevenly over ranks). Memory: ``N x d`` per rank."""
    layers = list(sharded_layers(module).values())
    for layer in layers:
        layer._replica = layer.full_weight()
    try:
        yield
    finally:
        for layer in layers:
            layer._replica = None
