"""What the one loop needs from a task (:class:`Task`) and the direction of its metric."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Protocol

import torch

from embedlab.distributed import World
from embedlab.training.step import Step

Mode = Literal["max", "min"]


class Task(Protocol):
    """What the loop needs from a task."""

    @property
    def model(self) -> torch.nn.Module: ...

    @property
    def metric(self) -> str | None:
        """Key of the model-selection metric in :meth:`validate`'s result (``None``: no model
        selection, the last epoch is the result)."""
        ...

    @property
    def mode(self) -> Mode:
        """``max`` (MRR) or ``min`` (RMSE, perplexity): which direction of ``metric`` is better."""
        ...

    def build_optimizer(self) -> torch.optim.Optimizer | None:
        """The optimizer of an autograd task; ``None`` where :meth:`train_step` updates the
        parameters itself."""
        ...

    def build_scheduler(
        self, optimizer: torch.optim.Optimizer | None
    ) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
        """A plateau scheduler stepped with the validation metric, or ``None``."""
        ...

    def num_batches(self) -> int: ...

    def batches(self, generator: torch.Generator) -> Iterator[Any]:
        """The epoch's global batches, in the same order on every rank (``generator`` is seeded
        alike on all ranks)."""
        ...

    def local_batch(self, batch: Any, world: World) -> tuple[Any | None, float]:
        """This rank's part of a global batch and its share of the batch's loss normalizer
        (:func:`~embedlab.training.data_parallel.local_slice` for tensor batches; ``(batch,
        1.0)`` in one process). ``None``: nothing for this rank in this batch."""
        ...

    def train_step(self, batch: Any) -> Step: ...

    def global_penalty(self, batch: Any) -> torch.Tensor | None:
        """Data parallel: the regularization term of the *global* batch, identical on every
        rank (added once to the step; :meth:`train_step` then leaves it out); ``None``: the
        task has none or includes it in :meth:`train_step` (one process)."""
        ...

    def validate(self) -> dict[str, Any]:
        """Validation metrics, the same on every rank (evaluation is split and gathered)."""
        ...
