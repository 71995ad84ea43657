"""Data parallelism with ``torch.distributed``: who this process is, and the few collectives the
loop and the evaluators need.

``torchrun --standalone --nproc-per-node N -m embedlab kge train ...`` starts N processes with
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set;
:func:`init_world` joins them into one process group (gloo on CPU, NCCL on CUDA). Without those
variables a run is one process and every helper here is the identity, so single-process code
pays nothing. The module sits beside ``errors`` (not under ``training``) because evaluation,
which must not import the trainer, splits its queries across ranks with it.

Conventions every caller relies on:

* Each global batch is cut into ``world_size`` contiguous slices (:func:`shard_bounds`), rank r
  takes slice r; the global batch size, and so the learning-rate semantics, are those of one
  process.
* Evaluation cuts its queries at batch boundaries (:func:`shard_bounds` with ``align``), so every
  query is scored in the same batch as in one process and the gathered ranks are identical.
* Rank 0 alone writes the run directory (trace, checkpoints, metrics.json).
"""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from embedlab.errors import UserError


@dataclass(frozen=True)
class World:
    """This process's place in the job. ``World()`` is the single-process default.

    Attributes:
        rank: global rank, 0 .. world_size - 1. world_size: processes in the job.
        local_rank: rank on this node (selects ``cuda:local_rank``).
        backend: ``"gloo"``, ``"nccl"``, or ``None`` without a process group.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run directory and prints."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        """More than one process (collectives do something)."""
        return self.world_size > 1


SINGLE = World()


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher using its environment variables) started us."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a single process (what prints results on the console)."""
    return int(os.environ.get("RANK", "0")) == 0


def init_world(
    device: torch.device, *, need_group: bool = False, timeout_minutes: float = 30.0
) -> tuple[World, torch.device]:
    """Join the process group torchrun set up, or stay single-process.

    Args:
        device: the resolved ``device`` key; under torchrun a CUDA device becomes
            ``cuda:LOCAL_RANK`` (one GPU per process) and the backend NCCL, a CPU one gloo.
        need_group: without torchrun, still start a one-process gloo group on a free local
            port: row-wise sharded tables (TorchRec) need a group even on one rank.

    Returns:
        ``(world, device)``: this rank and the device it trains on.

    Raises:
        UserError: ``cuda:N`` given explicitly under torchrun with more than one process per
            node (each process takes the GPU of its local rank), or fewer GPUs than processes.
    """
    if not launched_by_torchrun():
        if not need_group:
            return SINGLE, device
        if not dist.is_initialized():
            dist.init_process_group(
                backend="gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                world_size=1, timeout=timedelta(minutes=timeout_minutes),
            )  # fmt: skip
        return World(backend="gloo"), device
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device.type == "cuda":
        if device.index is not None and local_size > 1:
            raise UserError(
                f"device={device} under torchrun with {local_size} processes per node: use "
                "device=cuda (each process takes cuda:LOCAL_RANK)"
            )
        if local_size > torch.cuda.device_count():
            raise UserError(
                f"torchrun started {local_size} processes per node but only "
                f"{torch.cuda.device_count()} CUDA device(s) are visible"
            )
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world_size,
            timeout=timedelta(minutes=timeout_minutes),
        )
    return World(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend), device


@contextmanager
def joined(
    device: torch.device, *, need_group: bool = False
) -> Iterator[tuple[World, torch.device]]:
    """:func:`init_world` on entry, :func:`shutdown` on exit (``failed`` when the body raised):
    ``with joined(device) as (world, device): ...`` around one run."""
    world, device = init_world(device, need_group=need_group)
    try:
        yield world, device
    except BaseException:
        shutdown(world, failed=True)
        raise
    shutdown(world)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a local rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shutdown(world: World, *, failed: bool = False) -> None:
    """Leave the process group: after a barrier (gloo can abort at exit without one), except
    after an error (``failed``), when the other ranks may never reach it; torchrun then stops
    them as this rank exits."""
    if world.backend is not None and dist.is_initialized():
        gc.collect()  # DDP wrappers (module cycles) release the group before it is destroyed
        if not failed:
            dist.barrier()
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own random streams (SSE draws, dropout, KD noise, negative
    samples): ``seed`` on rank 0 (a one-process run is rank 0), a distinct 63-bit mix elsewhere.
    Reproducible: the same (seed, rank) always gives the same stream."""
    if rank == 0:
        return seed
    mixed = (seed * 0x9E3779B97F4A7C15 + rank * 0xBF58476D1CE4E5B9) & 0x7FFF_FFFF_FFFF_FFFF
    return mixed ^ (mixed >> 31)


def shard_bounds(n: int, world: World, *, align: int = 1) -> tuple[int, int]:
    """This rank's ``[start, stop)`` of ``n`` items cut into ``world_size`` contiguous slices.

    With ``align`` > 1 the cuts fall on multiples of ``align`` (whole evaluation batches); the
    slices then differ by at most one block. Slices may be empty (``n`` < world size).
    """
    blocks = -(-n // align)
    start_block = blocks * world.rank // world.world_size
    stop_block = blocks * (world.rank + 1) // world.world_size
    return min(n, start_block * align), min(n, stop_block * align)


def all_sum(values: list[float], world: World) -> list[float]:
    """Element-wise sum of ``values`` over ranks (float64 on the CPU, or on the NCCL device)."""
    if not world.parallel:
        return list(values)
    device = torch.device("cuda", torch.cuda.current_device()) if world.backend == "nccl" else None
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank when ``flag`` is True on at least one (a stop all ranks must share)."""
    if not world.parallel:
        return flag
    return all_sum([1.0 if flag else 0.0], world)[0] > 0


def gather_cat(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` (first dimensions may differ) in rank order, on every
    rank. ``(n_r, ...)`` -> ``(sum_r n_r, ...)``."""
    if not world.parallel:
        return tensor
    sizes: list[Any] = [None] * world.world_size
    dist.all_gather_object(sizes, int(tensor.shape[0]))
    longest = max(sizes)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


def gather_padded(local: torch.Tensor, widest: int, world: World) -> torch.Tensor:
    """Every rank's ``local (n_r, c)`` with ``n_r <= widest`` known to all ranks, padded to
    ``(widest, c)`` and stacked in rank order: ``(W * widest, c)`` (one all-gather, no size
    exchange; the caller knows which rows are padding)."""
    padded = local.new_zeros((widest, local.shape[1]))
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(world.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat(parts)


def gather_objects(obj: Any, world: World) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order, on every rank."""
    if not world.parallel:
        return [obj]
    out: list[Any] = [None] * world.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. a decision only rank 0 can make)."""
    if not world.parallel:
        return obj
    box = [obj if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.parallel:
        dist.barrier()
