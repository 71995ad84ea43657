"""DistributedDataParallel for the one loop: a task's train step as a module DDP can wrap, the
default cut of a global batch into per-rank slices, and per-rank RNG states in checkpoints.

Gradient semantics (what makes a W-rank run equal a one-process run with the same global batch):
a task's loss is a mean over the batch's normalizer units (triples, queries, streams). Rank r
computes the mean over its slice and scales it by ``W * share_r`` with
``share_r = units_r / units_global``; DDP averages gradients over the W ranks, so the gradient
that every rank applies is ``sum_r share_r * grad(mean_r) = grad(global mean)``. Terms computed
over the whole table (an unweighted penalty) enter every rank's loss and, scaled the same way,
sum to one copy. Regularization terms that are not sums over rows (KD's entropy and
distillation terms average over a batch's *unique* rows) are computed by every rank on the
global batch (``Task.global_penalty``) and added unscaled: DDP's average keeps one copy.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from embedlab.distributed import World, shard_bounds
from embedlab.embeddings.kd import KdEmbedding
from embedlab.embeddings.sharded import ShardedEmbeddingTable, sharded_parameter_names
from embedlab.training.step import GlobalPenalty, Step, TrainStep


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
    """``forward(local, scale, batch)`` = ``scale * train_step(local).loss +
    global_penalty(batch)``, so DDP sees the whole step.

    The :class:`Step` of the last call is kept in :attr:`last` (rows, and the logged value:
    the local loss plus the global penalty).
    """

    def __init__(
        self, *, model: nn.Module, train_step: TrainStep, global_penalty: GlobalPenalty
    ) -> None:
        super().__init__()
        self.model = model
        self.train_step = train_step
        self.global_penalty = global_penalty
        self.last = Step(loss=torch.zeros(()), rows=0, value=0.0)

    def forward(self, local: Any, scale: float, batch: Any) -> torch.Tensor:
        step = self.train_step(local)
        loss = step.loss * scale
        penalty = self.global_penalty(batch)
        if penalty is not None:
            loss = loss + penalty
            if step.value is None:
                step.value = float((step.loss + penalty).detach())
        self.last = step
        return loss


def wrap(
    *,
    model: nn.Module,
    train_step: TrainStep,
    global_penalty: GlobalPenalty,
    device: torch.device,
) -> DistributedDataParallel:
    """DDP around ``train_step`` on ``model`` (process group already initialized).

    Rows of row-wise sharded tables are not DDP's (TorchRec reduces them itself): they are left
    out of its broadcast and all-reduce. With KD tables DDP looks for parameters a step leaves
    without gradient (``kd.freeze_codes`` stops the code logits' gradient mid-run; an unused
    parameter would otherwise fail the next step's reduction).
    """
    module = StepModule(model=model, train_step=train_step, global_penalty=global_penalty)
    ignored = {f"model.{name}" for name in sharded_parameter_names(model)}
    if ignored:
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, list(ignored))
    return DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        forward_sync_buffers=False,  # buffers (KD codes, SSE graphs) are equal on every rank
        find_unused_parameters=any(isinstance(m, KdEmbedding) for m in model.modules()),
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
