"""The TorchRec side of a row-wise sharded table: one ``EmbeddingCollection`` table wrapped in
``DistributedModelParallel`` with a hand-built ROW_WISE plan and a fused (FBGEMM) optimizer.

Every TorchRec / FBGEMM import is inside a function: ``import embedlab`` never loads TorchRec,
and a machine without it fails only when a sharded table is built (:func:`require_torchrec`).

Measured with torchrec 1.8.0 + fbgemm-gpu-cpu 1.8.0 on torch 2.13.0 (CPU, gloo):

* TorchRec's planner offers ROW_WISE on cuda/mtia only; an explicit plan with the ``fused``
  kernel runs on CPU (``construct_module_sharding_plan(..., device_type="cpu")``).
* FBGEMM's CPU kernels update with EXACT_SGD and EXACT_ADAGRAD (and row-wise Adagrad variants);
  ``adam`` fails with ``AssertionError: Optimizer adam is not supported in CPU mode.``
* The kernel reads its learning rate when a lookup runs *forward*; a new ``lr`` in the
  optimizer's ``param_groups`` reaches it at the next ``fused_optimizer.step()`` (or
  ``zero_grad()``), which :meth:`RowWiseTable.apply_gradients` calls before its forward.
* DMP initializes the shards itself (drawing from the global RNG): the caller copies its rows
  in afterwards; the state-dict shards (weights and optimizer state) are views of the kernel's
  storage, so ``copy_`` into them writes the table.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from embedlab.errors import UserError

CPU = torch.device("cpu")  # FBGEMM's CPU kernels: shards, lookups and gradients live here
FEATURE = "ids"  # the one feature (id list) of the one-table collection
TABLE = "table"
INSTALL_HINT = "run `make torchrec` (torchrec==1.8.0 and fbgemm-gpu-cpu==1.8.0 with --no-deps)"
#: embedlab optimizer name -> FBGEMM ``EmbOptimType`` member (the exact, deterministic kernels).
FUSED_OPTIMIZERS = {"sgd": "EXACT_SGD", "adagrad": "EXACT_ADAGRAD"}
ADAGRAD_EPS = 1e-10  # torch.optim.Adagrad's default (FBGEMM's is 1e-8)


class _DropFxNotice(logging.Filter):
    """Drops torch.fx's "is_fx_tracing will return true for both ..." notice, which every rank
    prints at its first TorchRec lookup (addressed to TorchRec's authors, not to users)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("is_fx_tracing will return true")


_FX_NOTICE = _DropFxNotice()


def require_torchrec() -> None:
    """Import TorchRec and FBGEMM once (their import-time deprecation warnings silenced).

    Raises:
        UserError: either is missing or fails to load (the message says how to install them).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for module in ("fbgemm_gpu", "torchrec", "torchrec.distributed"):
                importlib.import_module(module)
    except Exception as exc:  # ImportError, or OSError from a mismatched native library
        raise UserError(
            f"row-wise sharded tables (sharding: row_wise) need TorchRec, which failed to "
            f"import ({type(exc).__name__}: {exc}); {INSTALL_HINT}"
        ) from exc


@dataclass
class RowWiseTable:
    """A ``(N, d)`` table whose rows ``[start, stop)`` live on this rank.

    Attributes:
        dmp: the ``DistributedModelParallel`` around the one-table ``EmbeddingCollection``.
        start, stop: this rank's rows. bounds: ``(start, stop)`` of every rank, by rank (a
        rank without rows, possible when N is not a multiple of the world size, has ``(N, N)``).
    """

    dmp: Any
    num_rows: int
    dim: int
    start: int
    stop: int
    bounds: list[tuple[int, int]]

    @property
    def fused_optimizer(self) -> Any:
        """The DMP's ``KeyedOptimizer`` (a ``torch.optim.Optimizer``) over the table."""
        return self.dmp.fused_optimizer

    def local_weight(self) -> torch.Tensor:
        """This rank's rows ``(stop - start, d)``, a view of the kernel's weights."""
        shards = self.dmp.state_dict()[f"embeddings.{TABLE}.weight"].local_shards()
        return shards[0].tensor if shards else torch.empty(0, self.dim, device=CPU)

    def local_optimizer_states(self) -> dict[str, torch.Tensor]:
        """The optimizer's per-row state on this rank (Adagrad: ``momentum1`` ``(stop - start,
        d)``, the sum of squared gradients; SGD: none), views of the kernel's storage."""
        out: dict[str, torch.Tensor] = {}
        for states in self.fused_optimizer.state_dict()["state"].values():
            for key, sharded in states.items():
                shards = sharded.local_shards()
                out[key.removeprefix(f"{TABLE}.")] = (
                    shards[0].tensor if shards else torch.empty(0, *sharded.size()[1:], device=CPU)
                )
        return dict(sorted(out.items()))

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Collective: rows of ``ids (M,)`` (int64, any rank's rows) -> ``(M, d)``, in order.

        Differentiable when grad mode is on: the backward sends each row's gradient to its
        owner, whose kernel applies the fused optimizer at once. Every rank must call it the
        same number of times (``M`` may differ, 0 included).
        """
        from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

        kjt = KeyedJaggedTensor(
            keys=[FEATURE],
            values=ids,
            lengths=torch.tensor([ids.numel()], dtype=torch.int64, device=CPU),
        )  # one bag per rank: the same stride on every rank, whatever M
        return self.dmp(kjt)[FEATURE].values()

    def apply_gradients(self, ids: torch.Tensor, grads: torch.Tensor) -> None:
        """Collective: one fused optimizer step with gradient ``grads (U, d)`` on rows ``ids
        (U,)``; the owner of a row sums what every rank sends for it (gradient division off)."""
        self.fused_optimizer.step()  # pushes param_groups' lr into the kernel before forward
        with torch.enable_grad():
            rows = self.lookup(ids)  # (U, d)
        rows.backward(grads)

    def gather(self, local: torch.Tensor) -> torch.Tensor:
        """Collective: every rank's ``(stop_r - start_r, ...)`` rows -> the full ``(N, ...)``."""
        most = max(stop - start for start, stop in self.bounds)
        padded = local.new_zeros((most, *local.shape[1:]))
        padded[: len(local)] = local
        pieces = [torch.empty_like(padded) for _ in self.bounds]
        dist.all_gather(pieces, padded)
        full = local.new_empty((self.num_rows, *local.shape[1:]))
        for (start, stop), piece in zip(self.bounds, pieces, strict=True):
            full[start:stop] = piece[: stop - start]
        return full


def build_row_wise(*, num_rows: int, dim: int, optimizer: str, lr: float) -> RowWiseTable:
    """Shard a ``(num_rows, dim)`` table row-wise over the default process group (on CPU).

    The shards hold DMP's own initial values; copy the real rows in (``local_weight()``).
    The global RNG is left as it was (DMP's initialization draws from a forked state).
    """
    require_torchrec()
    from fbgemm_gpu.split_embedding_configs import EmbOptimType
    from torchrec import EmbeddingCollection, EmbeddingConfig
    from torchrec.distributed import DistributedModelParallel
    from torchrec.distributed.comm_ops import set_gradient_division
    from torchrec.distributed.embedding import EmbeddingCollectionSharder
    from torchrec.distributed.sharding_plan import construct_module_sharding_plan, row_wise
    from torchrec.distributed.types import ShardingPlan

    set_gradient_division(False)  # summed here; ShardedEmbeddingTable averages itself
    fused = {"optimizer": EmbOptimType[FUSED_OPTIMIZERS[optimizer]], "learning_rate": lr}
    if optimizer == "adagrad":
        fused["eps"] = ADAGRAD_EPS
    sharder = EmbeddingCollectionSharder(fused_params=fused)
    table = EmbeddingConfig(
        name=TABLE, embedding_dim=dim, num_embeddings=num_rows, feature_names=[FEATURE]
    )
    collection = EmbeddingCollection(tables=[table], device=torch.device("meta"))
    world = dist.get_world_size()
    plan = construct_module_sharding_plan(
        collection,
        {TABLE: row_wise(compute_kernel="fused")},
        sharder=sharder,
        local_size=world,
        world_size=world,
        device_type="cpu",
    )
    fx_log = logging.getLogger("torch.fx._symbolic_trace")
    if _FX_NOTICE not in fx_log.filters:
        fx_log.addFilter(_FX_NOTICE)
    with torch.random.fork_rng(devices=[]):
        dmp = DistributedModelParallel(
            collection,
            device=CPU,
            plan=ShardingPlan({"": plan}),
            sharders=[sharder],
            init_data_parallel=False,
        )
    metadata = dmp.state_dict()[f"embeddings.{TABLE}.weight"].metadata()
    bounds = [(num_rows, num_rows)] * world
    for shard in metadata.shards_metadata:
        start = shard.shard_offsets[0]
        bounds[shard.placement.rank()] = (start, start + shard.shard_sizes[0])
    start, stop = bounds[dist.get_rank()]
    return RowWiseTable(dmp=dmp, num_rows=num_rows, dim=dim, start=start, stop=stop, bounds=bounds)
