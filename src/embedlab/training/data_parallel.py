"""DistributedDataParallel for the one loop: a task's train step as a module DDP can wrap, the
default cut of a global batch into per-rank slices, and per-rank RNG states in checkpoints.

Gradient semantics (what makes a W-rank run equal a one-process run with the same global batch):
a task's loss is a mean over the batch's normalizer units (triples, queries, streams). Rank r
computes the mean over its slice and scales it by ``W * share_r`` with
``share_r = units_r / units_global``; DDP averages gradients over the W ranks, so the gradient
that every rank applies is ``sum_r share_r * grad(mean_r) = grad(global mean)``. Terms computed
over the whole table (an unweighted penalty) enter every rank's loss and, scaled the same way,
sum to one copy.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from embedlab.distributed import World, shard_bounds
from embedlab.embeddings.sharded import ShardedEmbeddingTable, sharded_parameter_names
from embedlab.training.step import Step, TrainStep


def local_slice(batch: Any, world: World) -> tuple[Any, float]:
    """Rank ``world.rank``'s contiguous slice of a tensor batch ``(B, ...)`` and its share of the
    batch (``len(slice) / B``).

    A rank whose slice is empty (``B`` < world size, e.g. an epoch's last batch) gets the
    batch's first row with share 0: it runs the same step (the same collectives, which a
    sharded table's lookups are) and contributes nothing.
    """
    if not world.parallel:
        return batch, 1.0
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"cannot slice a {type(batch).__name__} batch across ranks")
    start, stop = shard_bounds(len(batch), world)
    if stop <= start:
        return batch[:1], 0.0
    return batch[start:stop], (stop - start) / len(batch)


class StepModule(nn.Module):
    """``forward(batch, scale)`` = ``scale * train_step(batch).loss``, so DDP sees the step.

    The :class:`Step` of the last call is kept in :attr:`last` (rows and the logged value). An
    empty slice (``batch`` None) returns ``0 * sum(parameters)``: the rank still joins the
    gradient all-reduce with zero gradients.
    """

    def __init__(self, *, model: nn.Module, train_step: TrainStep) -> None:
        super().__init__()
        self.model = model
        self.train_step = train_step
        self.last = Step(loss=torch.zeros(()), rows=0, value=0.0)

    def forward(self, batch: Any, scale: float) -> torch.Tensor:
        if batch is None:
            params = [p for p in self.model.parameters() if p.requires_grad]
            zero = torch.stack([p.sum() for p in params]).sum() * 0.0
            self.last = Step(loss=zero, rows=0, value=0.0)
            return zero
        self.last = self.train_step(batch)
        return self.last.loss * scale


def wrap(
    *, model: nn.Module, train_step: TrainStep, device: torch.device
) -> DistributedDataParallel:
    """DDP around ``train_step`` on ``model`` (process group already initialized).

    Rows of row-wise sharded tables are not DDP's (TorchRec reduces them itself): they are left
    out of its broadcast and all-reduce.
    """
    module = StepModule(model=model, train_step=train_step)
    ignored = {f"model.{name}" for name in sharded_parameter_names(model)}
    if ignored:
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, list(ignored))
    return DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        forward_sync_buffers=False,  # buffers (KD codes, SSE graphs) are equal on every rank
    )


def merge_rank_rng(per_rank: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One checkpoint dict of every rank's RNG states: rank 0's under their own keys (a one-process
    checkpoint), rank r's under ``key@r``."""
    merged = dict(per_rank[0])
    for rank, states in enumerate(per_rank[1:], start=1):
        merged.update({f"{key}@{rank}": value for key, value in states.items()})
    return merged


def rank_rng(merged: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor] | None:
    """Rank ``rank``'s states out of :func:`merge_rank_rng` (``None``: the checkpoint was written
    by fewer ranks; the shuffling state, shared by all ranks, is rank 0's)."""
    if rank == 0:
        return {k: v for k, v in merged.items() if "@" not in k}
    suffix = f"@{rank}"
    mine = {k[: -len(suffix)]: v for k, v in merged.items() if k.endswith(suffix)}
    if not mine:
        return None
    mine["shuffle"] = merged["shuffle"]
    return mine


def step_sharded_tables(tables: list[ShardedEmbeddingTable], lr: float) -> None:
    """After the dense optimizer's step: one fused update of each row-wise sharded table
    (collective), at the dense optimizer's current learning rate (so LR-on-plateau and a
    resumed run's decayed rate reach the fused kernel too)."""
    for table in tables:
        table.set_lr(lr)
        table.step()
