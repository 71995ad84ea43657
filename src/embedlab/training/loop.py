"""The training loop shared by every task: epochs, validation, LR schedule, early stopping,
time budget, resumable checkpoints and an append-only trace.

A task supplies batches, a loss per batch and a validation function (:class:`Task`); the loop
owns everything else. Killed runs resume from ``checkpoints/last`` with model, optimizer,
scheduler, RNG and counters restored, so the resumed run continues exactly as an uninterrupted
one (same seed, same thread count).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from embedlab.embeddings.kd import set_training_progress
from embedlab.kge.config import TrainConfig
from embedlab.training.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from embedlab.training.optim import build_optimizer, build_scheduler
from embedlab.training.trace import Trace


class Task(Protocol):
    """What the loop needs from a task (KGE, MF, LM)."""

    @property
    def model(self) -> torch.nn.Module: ...

    @property
    def metric(self) -> str:
        """Validation metric key; higher is better."""
        ...

    def num_batches(self) -> int: ...

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]: ...

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Return the batch loss and the number of rows it scored (for throughput)."""
        ...

    def validate(self) -> dict[str, Any]: ...


@dataclass
class LoopState:
    """Counters saved with every checkpoint (JSON)."""

    epoch: int = 0
    best_metric: float | None = None  # None until the first validation
    best_epoch: int = 0
    bad_evals: int = 0
    seconds: float = 0.0  # training + periodic validation (what train.max_minutes bounds)
    train_seconds: float = 0.0  # training steps only
    rows: int = 0
    stop_reason: str | None = None


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last"

    @property
    def best(self) -> Path:
        return self.root / "checkpoints" / "best"

    @property
    def trace(self) -> Path:
        return self.root / "trace.jsonl"


def rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The RNG states a checkpoint stores: torch's global RNG and the shuffling generator."""
    return {"torch": torch.get_rng_state(), "shuffle": generator.get_state()}


class Loop:
    """Runs ``task`` to completion under ``config`` inside ``paths.root``."""

    def __init__(
        self, *, task: Task, config: TrainConfig, eval_every: int, paths: RunPaths
    ) -> None:
        self.task, self.config, self.eval_every, self.paths = task, config, eval_every, paths
        self.optimizer = build_optimizer(task.model.parameters(), config)
        self.scheduler = build_scheduler(self.optimizer, config)
        self.trace = Trace(paths.trace)
        self.state = LoopState()

    def _save(self, path: Path, generator: torch.Generator) -> None:
        save_checkpoint(
            path,
            model=self.task.model,
            optimizer=self.optimizer,
            rng=rng_state(generator),
            state={
                "loop": asdict(self.state),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            },
        )

    def _resume(self, generator: torch.Generator) -> bool:
        if not checkpoint_exists(self.paths.last):
            return False
        rng, state = load_checkpoint(
            self.paths.last, model=self.task.model, optimizer=self.optimizer
        )
        torch.set_rng_state(rng["torch"])
        generator.set_state(rng["shuffle"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.state = LoopState(**state["loop"])
        self.trace.write("resume", epoch=self.state.epoch, seconds=self.state.seconds)
        return True

    def _over_budget(self, extra: float) -> bool:
        budget = self.config.max_minutes
        return budget is not None and self.state.seconds + extra >= 60 * budget

    def _train_epoch(self, generator: torch.Generator) -> tuple[float, int, float]:
        start, total, rows, steps = time.perf_counter(), 0.0, 0, 0
        with tqdm(
            self.task.batches(generator),
            total=self.task.num_batches(),
            desc=f"epoch {self.state.epoch}",
            unit="batch",
            leave=False,
            disable=None,
        ) as bar:
            num_batches = max(1, self.task.num_batches())
            for index, batch in enumerate(bar):
                set_training_progress(self.task.model, self.state.epoch - 1 + index / num_batches)
                self.optimizer.zero_grad(set_to_none=True)
                loss, n = self.task.loss(batch)
                loss.backward()
                self.optimizer.step()
                value = float(loss.detach())
                total, rows, steps = total + value, rows + n, steps + 1
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{value:.4f}", rows_s=f"{rows / elapsed:.0f}")
                if self._over_budget(elapsed):
                    self.state.stop_reason = self._budget_message()
                    break
        return total / max(1, steps), rows, time.perf_counter() - start

    def _budget_message(self) -> str:
        return f"time budget of {self.config.max_minutes} min reached"

    def _validate(self, generator: torch.Generator) -> None:
        start = time.perf_counter()
        metrics = self.task.validate()
        seconds = time.perf_counter() - start
        self.state.seconds += seconds
        value = float(metrics[self.task.metric])
        if self.scheduler is not None:
            self.scheduler.step(value)
        if self.state.best_metric is None or value > self.state.best_metric:
            self.state.best_metric, self.state.best_epoch, self.state.bad_evals = (
                value,
                self.state.epoch,
                0,
            )
            self._save(self.paths.best, generator)
        else:
            self.state.bad_evals += 1
        patience = self.config.early_stopping_patience
        if patience and self.state.bad_evals >= patience and self.state.stop_reason is None:
            self.state.stop_reason = (
                f"early stopping: no {self.task.metric} gain in {patience} validations"
            )
        self.trace.write(
            "valid",
            epoch=self.state.epoch,
            seconds=self.state.seconds,
            eval_seconds=seconds,
            **metrics,
        )
        print(
            f"epoch {self.state.epoch:4d}  valid {self.task.metric} {value:.4f} "
            f"(best {self.state.best_metric or 0.0:.4f} @ {self.state.best_epoch})  "
            f"{self.state.seconds / 60:.1f} min",
            file=sys.stderr,
        )

    def run(self, *, seed: int) -> LoopState:
        """Train until max epochs, early stopping or the time budget; resume if possible."""
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        if not self._resume(generator):
            self.trace.write("start", seed=seed)
        else:
            print(f"resumed after epoch {self.state.epoch}", file=sys.stderr)
        while self.state.stop_reason is None and self.state.epoch < self.config.max_epochs:
            if self._over_budget(0.0):
                self.state.stop_reason = self._budget_message()
                break
            self.state.epoch += 1
            loss, rows, seconds = self._train_epoch(generator)
            self.state.seconds += seconds
            self.state.train_seconds += seconds
            self.state.rows += rows
            self.trace.write(
                "epoch",
                epoch=self.state.epoch,
                loss=loss,
                rows=rows,
                rows_per_s=rows / seconds if seconds else 0.0,
                lr=self.optimizer.param_groups[0]["lr"],
                seconds=self.state.seconds,
            )
            last = self.state.epoch == self.config.max_epochs or self.state.stop_reason
            if self.state.epoch % self.eval_every == 0 or last:
                self._validate(generator)
            if (
                self.state.epoch % self.config.checkpoint_every == 0
                or last
                or self.state.stop_reason
            ):
                self._save(self.paths.last, generator)
        if self.state.stop_reason is None:
            self.state.stop_reason = "max epochs reached"
        if not checkpoint_exists(self.paths.last):  # max_epochs 0: keep the initial model
            self._save(self.paths.last, generator)
        self.trace.write("stop", reason=self.state.stop_reason, epoch=self.state.epoch)
        return self.state
