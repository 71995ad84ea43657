"""The one training loop of every task (KGE, MF, LM): epochs, validation, LR-on-plateau, early
stopping with a metric mode, time budget, resumable checkpoints, trace and metrics.json.

A task supplies batches, a train step and a validation (:class:`Task`); the loop owns the rest.
Per-step needs of a method (KD's temperature schedule, gradient clipping, a fixed per-epoch LR
schedule) attach as :class:`~embedlab.training.callbacks.Callback` hooks. Killed runs resume from
``checkpoints/last`` with model, optimizer, scheduler, RNG states and counters restored, so the
resumed run continues exactly as an uninterrupted one (same seed, same thread count).

Trace events (one schema for every task, ``RUN_DIR/trace.jsonl``): ``start`` (seed, device,
precision, world_size, metric, mode), ``epoch``, ``valid``, ``resume``, ``stop``, ``test``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from embedlab.distributed import (
    SINGLE,
    World,
    all_sum,
    any_rank,
    barrier,
    broadcast_object,
    gather_objects,
    rank_seed,
)
from embedlab.embeddings.sharded import sharded_layers
from embedlab.errors import UserError
from embedlab.training.callbacks import Callback
from embedlab.training.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from embedlab.training.config import LoopConfig
from embedlab.training.data_parallel import merge_rank_rng, rank_rng, step_sharded_tables, wrap
from embedlab.training.device import autocast, rng_state, set_rng_state
from embedlab.training.run_dir import RunPaths
from embedlab.training.step import Step
from embedlab.training.task import Mode, Task
from embedlab.training.trace import Trace, code_version


@dataclass
class LoopState:
    """Counters saved with every checkpoint (JSON)."""

    epoch: int = 0
    best_metric: float | None = None  # None until the first validation
    best_epoch: int = 0
    bad_validations: int = 0
    seconds: float = 0.0  # training + periodic validation (what train.max_minutes bounds)
    train_seconds: float = 0.0  # training steps only
    rows: int = 0
    stop_reason: str | None = None
    epoch_seconds: list[float] = field(default_factory=list)  # training steps, per epoch

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoopState:
        data = dict(data)
        if "bad_evals" in data:  # checkpoints written before the rename
            data["bad_validations"] = data.pop("bad_evals")
        return cls(**data)


def better(value: float, best: float | None, mode: Mode) -> bool:
    """Whether ``value`` improves on ``best`` (``None``: nothing to beat) in ``mode``."""
    if best is None:
        return True
    return value > best if mode == "max" else value < best


class Loop:
    """Runs ``task`` to completion under ``config`` inside ``paths.root``.

    Args:
        task: the task (model already on ``device``).
        config: the ``train`` section (:class:`~embedlab.training.config.LoopConfig`).
        eval_every: epochs between validations.
        paths: the run directory.
        device: where the model and batches live (``precision`` autocasts on its type).
        callbacks: hooks called at epoch start, batch start and after backward.
        progress: show a progress bar per epoch (tqdm; also off where stderr is not a terminal).
        world: this process's rank in a data-parallel job (:mod:`embedlab.distributed`): the
            task's step runs under DistributedDataParallel on this rank's slice of each global
            batch; rank 0 alone writes the trace, checkpoints and metrics.json; checkpoints hold
            every rank's RNG states.
    """

    def __init__(
        self,
        *,
        task: Task,
        config: LoopConfig,
        eval_every: int,
        paths: RunPaths,
        device: torch.device,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        world: World = SINGLE,
    ) -> None:
        self.task, self.config, self.eval_every, self.paths = task, config, eval_every, paths
        self.device, self.callbacks, self.world = device, list(callbacks), world
        self.progress = progress and world.is_main
        self.optimizer = task.build_optimizer()
        self.scheduler = task.build_scheduler(self.optimizer)
        self.trace = Trace(
            paths.trace, enabled=world.is_main, listeners=[c.on_trace for c in callbacks]
        )
        self.state = LoopState()
        self.ddp: torch.nn.parallel.DistributedDataParallel | None = None
        # row-wise sharded tables: updated by their fused kernel after each dense step
        self.sharded = list(sharded_layers(task.model).values())
        self.seed = 0  # set by run()

    # -- checkpoints -------------------------------------------------------------------------

    def _save(self, path: Path, generator: torch.Generator) -> None:
        """Collective in a data-parallel job: every rank calls it, rank 0 writes."""
        rngs = gather_objects(rng_state(generator, self.device), self.world)
        save_checkpoint(
            path,
            model=self.task.model,
            optimizer=self.optimizer,
            rng=merge_rank_rng(rngs),
            state={
                "loop": asdict(self.state),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "world_size": self.world.world_size,
            },
            write=self.world.is_main,
        )
        barrier(self.world)  # the file is there for every rank once any rank goes on

    def _exists(self, path: Path) -> bool:
        """Whether checkpoint ``path`` exists, as rank 0 sees it (one answer for every rank: a
        rank deciding on its own could call a collective the others skip)."""
        return bool(broadcast_object(checkpoint_exists(path), self.world))

    def _resume(self, generator: torch.Generator) -> bool:
        if not self._exists(self.paths.last):
            return False
        try:
            rng, state = load_checkpoint(
                self.paths.last,
                model=self.task.model,
                optimizer=self.optimizer,
                map_location=self.device,
            )
            self.state = LoopState.from_json(state["loop"])
        except (RuntimeError, TypeError, KeyError, ValueError) as exc:
            raise UserError(
                f"{self.paths.last}.safetensors cannot be resumed with this config and dataset "
                f"as resolved now ({type(exc).__name__}: {exc}); use --overwrite or another --out"
            ) from None
        mine = rank_rng(rng, self.world.rank)
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.world.world_size and self.world.is_main:
            print(
                f"resuming a {saved_world}-process run with {self.world.world_size} processes: "
                "training continues, but not bit for bit as the original job would have",
                file=sys.stderr,
            )
        if mine is None:  # more ranks than the checkpoint has states for: a fresh stream
            torch.manual_seed(rank_seed(self.seed + self.state.epoch, self.world.rank))
            generator.set_state(rng["shuffle"].cpu())
        else:
            set_rng_state(mine, generator, self.device)
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.trace.write(
            "resume", epoch=self.state.epoch, seconds=self.state.seconds,
            world_size=self.world.world_size, code=code_version(),
        )  # fmt: skip
        return True

    # -- one epoch ---------------------------------------------------------------------------

    def _over_budget(self, extra: float) -> bool:
        budget = self.config.max_minutes
        return budget is not None and self.state.seconds + extra >= 60 * budget

    def _budget_message(self) -> str:
        return f"time budget of {self.config.max_minutes} min reached"

    def _step(self, batch: Any) -> Step:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        if self.ddp is not None:
            local, share = self.task.local_batch(batch, self.world)
            with autocast(self.device, self.config.precision):
                loss = self.ddp(local, share * self.world.world_size, batch)
            step = self.ddp.module.last
            if share == 0.0:  # a stand-in row (local_slice): it ran, it does not count
                step = Step(loss=step.loss, rows=0, value=0.0)
            loss.float().backward()  # DDP averages the gradients over ranks here
            for callback in self.callbacks:
                callback.after_backward(self)
            assert self.optimizer is not None
            self.optimizer.step()
            step_sharded_tables(self.sharded, self.optimizer.param_groups[0]["lr"])
            return step
        with autocast(self.device, self.config.precision):
            step = self.task.train_step(batch)
        if self.optimizer is not None and step.loss.requires_grad:
            step.loss.float().backward()
            for callback in self.callbacks:
                callback.after_backward(self)
            self.optimizer.step()
            step_sharded_tables(self.sharded, self.optimizer.param_groups[0]["lr"])
        return step

    def _train_epoch(self, generator: torch.Generator) -> tuple[float, int, int, float]:
        """Returns (mean loss per row, rows, steps, seconds)."""
        start, weighted, rows, steps = time.perf_counter(), 0.0, 0, 0
        self.task.model.train()
        num_batches = max(1, self.task.num_batches())
        with tqdm(
            self.task.batches(generator),
            total=num_batches,
            desc=f"epoch {self.state.epoch}",
            unit="batch",
            leave=False,
            disable=None if self.progress else True,
        ) as bar:
            for index, batch in enumerate(bar):
                for callback in self.callbacks:
                    callback.on_batch_start(self, self.state.epoch - 1 + index / num_batches)
                step = self._step(batch)
                value = float(step.loss.detach()) if step.value is None else step.value
                weighted, rows, steps = weighted + value * step.rows, rows + step.rows, steps + 1
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{value:.4f}", rows_s=f"{rows / elapsed:.0f}")
                # every rank stops at the same step: DDP's next all-reduce needs all of them
                if any_rank(self._over_budget(elapsed), self.world):
                    self.state.stop_reason = self._budget_message()
                    break
        if self.world.parallel:  # the epoch's loss over every rank's rows
            weighted, total = all_sum([weighted, float(rows)], self.world)
            rows = int(total)
        return weighted / max(1, rows), rows, steps, time.perf_counter() - start

    def _validate(self, generator: torch.Generator) -> None:
        start = time.perf_counter()
        metrics = self.task.validate()
        seconds = time.perf_counter() - start
        self.state.seconds += seconds
        self.trace.write(
            "valid", epoch=self.state.epoch, seconds=self.state.seconds, eval_seconds=seconds,
            **metrics,
        )  # fmt: skip
        key = self.task.metric
        if key is None:
            return
        value, mode = float(metrics[key]), self.task.mode
        if self.scheduler is not None:
            self.scheduler.step(value)
        if better(value, self.state.best_metric, mode):
            self.state.best_metric, self.state.best_epoch = value, self.state.epoch
            self.state.bad_validations = 0
            self._save(self.paths.best, generator)
        else:
            self.state.bad_validations += 1
        patience = self.config.early_stopping_patience
        if patience and self.state.bad_validations >= patience and self.state.stop_reason is None:
            self.state.stop_reason = f"early stopping: no {key} gain in {patience} validations"
        best = self.state.best_metric
        if not self.world.is_main:
            return
        print(
            f"epoch {self.state.epoch:4d}  valid {key} {value:.4f} "
            f"(best {best if best is not None else float('nan'):.4f} @ {self.state.best_epoch})"
            f"  {self.state.seconds / 60:.1f} min",
            file=sys.stderr,
        )

    # -- the run -----------------------------------------------------------------------------

    def run(self, *, seed: int, start_fields: dict[str, Any] | None = None) -> LoopState:
        """Train until max epochs, early stopping or the time budget; resume if possible.

        ``start_fields`` are added to the trace's ``start`` event (e.g. the vocabulary size).
        """
        self.seed = seed
        # each rank its own streams (SSE, dropout, KD noise, negatives); rank 0 = one process
        torch.manual_seed(rank_seed(seed, self.world.rank))
        # shuffling: the same global batch order on every rank (CPU; batches move after)
        generator = torch.Generator().manual_seed(seed)
        if not self._resume(generator):
            self.trace.write(
                "start", seed=seed, device=str(self.device), precision=self.config.precision,
                world_size=self.world.world_size, backend=self.world.backend,
                metric=self.task.metric, mode=self.task.mode, threads=torch.get_num_threads(),
                code=code_version(), **(start_fields or {}),
            )  # fmt: skip
        elif self.state.stop_reason is None and self.world.is_main:
            print(f"resumed after epoch {self.state.epoch}", file=sys.stderr)
        if self.world.parallel and self.optimizer is not None:
            self.ddp = wrap(
                model=self.task.model,
                train_step=self.task.train_step,
                global_penalty=self.task.global_penalty,
                device=self.device,
            )
        while self.state.stop_reason is None and self.state.epoch < self.config.max_epochs:
            if any_rank(self._over_budget(0.0), self.world):  # every rank stops alike
                self.state.stop_reason = self._budget_message()
                break
            self.state.epoch += 1
            for callback in self.callbacks:
                callback.on_epoch_start(self)
            loss, rows, steps, seconds = self._train_epoch(generator)
            self.state.seconds += seconds
            self.state.train_seconds += seconds
            self.state.rows += rows
            self.state.epoch_seconds.append(seconds)
            self.trace.write(
                "epoch", epoch=self.state.epoch, loss=loss, rows=rows, batches=steps,
                rows_per_s=rows / seconds if seconds else 0.0,
                lr=self.optimizer.param_groups[0]["lr"] if self.optimizer else None,
                epoch_seconds=seconds, seconds=self.state.seconds,
                **{k: v for c in self.callbacks for k, v in c.epoch_fields(self, loss).items()},
            )  # fmt: skip
            for callback in self.callbacks:
                callback.on_epoch_end(self)
            last = self.state.epoch == self.config.max_epochs or self.state.stop_reason
            if self.state.epoch % self.eval_every == 0 or last:
                self._validate(generator)
            due = self.state.epoch % self.config.checkpoint_every == 0
            if due or last or self.state.stop_reason:
                self._save(self.paths.last, generator)
        if self.state.stop_reason is None:
            self.state.stop_reason = "max epochs reached"
        if not self._exists(self.paths.last):  # max_epochs 0: keep the initial model
            self._save(self.paths.last, generator)
        self.trace.write("stop", reason=self.state.stop_reason, epoch=self.state.epoch)
        # DDP holds the process group (its reducer's buckets and hooks): released here, before
        # the group is destroyed, not at interpreter exit (where gloo may abort the process)
        self.ddp = None
        return self.state

    def finish(
        self,
        *,
        evaluate: Callable[[str], dict[str, Any]],
        splits: Sequence[str],
        extra: dict[str, Any] | None = None,
        wall_start: float | None = None,
        select: Callable[[torch.nn.Module], None] | None = None,
    ) -> dict[str, Any]:
        """Evaluate the selected model on ``splits``, write ``metrics.json``, trace ``test``.

        The selected model is ``checkpoints/best`` where the task selects on a metric and a best
        checkpoint exists, else the last state; ``select`` (e.g. NMT's checkpoint averaging)
        loads its own choice into the model instead. ``metrics.json``: one key per split, then
        ``best_epoch``, ``timing`` and the task's ``extra`` keys (ARCHITECTURE.md, run contract).
        """
        model = self.task.model
        if select is not None:
            select(model)
        elif self.task.metric is not None and self._exists(self.paths.best):
            load_checkpoint(self.paths.best, model=model, map_location=self.device)
        model.eval()
        metrics: dict[str, Any] = {split: evaluate(split) for split in splits}
        state = self.state
        metrics["best_epoch"] = state.best_epoch if self.task.metric is not None else state.epoch
        metrics["timing"] = {
            "epochs": state.epoch,
            "best_epoch": metrics["best_epoch"],
            "train_seconds": state.train_seconds,
            "train_and_valid_seconds": state.seconds,
            "epoch_seconds_median": statistics.median(state.epoch_seconds or [0.0]),
            "rows": state.rows,
            "rows_per_s": state.rows / state.train_seconds if state.train_seconds else 0.0,
            "stop_reason": state.stop_reason,
            "threads": torch.get_num_threads(),
            "device": str(self.device),
            "precision": self.config.precision,
        }
        if wall_start is not None:
            metrics["timing"]["wall_seconds_this_process"] = time.perf_counter() - wall_start
        metrics["timing"]["world_size"] = self.world.world_size
        metrics["timing"]["backend"] = self.world.backend
        metrics.update(extra or {})
        if not self.world.is_main:
            return metrics
        text = json.dumps(metrics, indent=1)
        (self.paths.root / "metrics.json").write_text(text, encoding="utf-8")
        if "test" in metrics:
            self.trace.write("test", epoch=metrics["best_epoch"], **metrics["test"])
        return metrics
