"""The one loop with a scripted task: model selection and early stopping in both metric modes,
LR-on-plateau in the task's mode, callbacks, budget, and the trace schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from embedlab.training.callbacks import Callback, EpochLearningRate
from embedlab.training.checkpoint import load_checkpoint
from embedlab.training.config import LoopConfig
from embedlab.training.loop import Loop, Mode, Step
from embedlab.training.optim import build_plateau_scheduler
from embedlab.training.run_dir import RunPaths


class ScriptedTask:
    """A one-parameter model; validation returns the next value of ``script``."""

    def __init__(self, script: list[float], mode: Mode, *, plateau: bool = False) -> None:
        self.model = torch.nn.Linear(1, 1, bias=False)
        self.script, self.mode, self.plateau = list(script), mode, plateau
        self.metric = "score"
        self.steps = 0

    def build_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=1.0)

    def build_scheduler(self, optimizer: Any) -> Any:
        if not self.plateau:
            return None
        return build_plateau_scheduler(optimizer, factor=0.5, patience=0, mode=self.mode)

    def num_batches(self) -> int:
        return 2

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        yield from torch.ones(2, 1, 1)

    def train_step(self, batch: torch.Tensor) -> Step:
        self.steps += 1
        return Step(loss=self.model(batch).sum() * 0.0, rows=1)

    def validate(self) -> dict[str, Any]:
        with torch.no_grad():  # mark the model with the epoch it was validated at
            self.model.weight.fill_(len(self.script))
        return {"score": self.script.pop(0)}


def _loop(task: ScriptedTask, tmp_path: Path, **config: Any) -> Loop:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return Loop(
        task=task,
        config=LoopConfig(**{"max_epochs": 6, **config}),
        eval_every=1,
        paths=RunPaths(tmp_path),
        device=torch.device("cpu"),
        progress=False,
    )


@pytest.mark.parametrize(
    ("mode", "script", "best_epoch"),
    [("max", [0.1, 0.5, 0.3, 0.2, 0.4, 0.45], 2), ("min", [0.9, 0.5, 0.6, 0.2, 0.3, 0.25], 4)],
)
def test_best_epoch_and_checkpoint_follow_the_mode(
    mode: Mode, script: list[float], best_epoch: int, tmp_path: Path
) -> None:
    task = ScriptedTask(script, mode)
    state = _loop(task, tmp_path).run(seed=0)
    assert state.best_epoch == best_epoch and state.epoch == 6
    assert state.best_metric == script[best_epoch - 1]
    load_checkpoint(tmp_path / "checkpoints" / "best", model=task.model)
    assert task.model.weight.item() == len(script) - best_epoch + 1  # the best epoch's model


@pytest.mark.parametrize("mode", ["max", "min"])
def test_early_stopping_counts_validations_without_gain(mode: Mode, tmp_path: Path) -> None:
    sign = 1 if mode == "max" else -1
    script = [sign * v for v in (1.0, 2.0, 1.5, 1.9, 2.0, 3.0)]  # no gain after epoch 2
    state = _loop(ScriptedTask(script, mode), tmp_path, early_stopping_patience=3).run(seed=0)
    assert state.epoch == 5 and state.best_epoch == 2
    assert state.stop_reason == "early stopping: no score gain in 3 validations"


@pytest.mark.parametrize("mode", ["max", "min"])
def test_plateau_scheduler_halves_the_lr_when_the_metric_stalls(mode: Mode, tmp_path: Path) -> None:
    values = (1.0, 2.0, 2.0, 3.0, 1.0, 0.5)  # positive: ReduceLROnPlateau's relative threshold
    script = [v if mode == "max" else 4.0 - v for v in values]
    _loop(ScriptedTask(script, mode, plateau=True), tmp_path).run(seed=0)
    events = [json.loads(x) for x in (tmp_path / "trace.jsonl").read_text().splitlines()]
    lrs = [e["lr"] for e in events if e["event"] == "epoch"]
    # stalls after epochs 3, 5 and 6 (patience 0): the lr of the next epoch is halved
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]


def test_callbacks_run_in_order_with_epoch_progress(tmp_path: Path) -> None:
    calls: list[tuple[str, float]] = []

    class Record(Callback):
        def on_epoch_start(self, loop: Loop) -> None:
            calls.append(("epoch", loop.state.epoch))

        def on_batch_start(self, loop: Loop, progress: float) -> None:
            calls.append(("batch", progress))

        def after_backward(self, loop: Loop) -> None:
            calls.append(("backward", loop.state.epoch))

    task = ScriptedTask([0.0, 0.0], "max")
    loop = _loop(task, tmp_path, max_epochs=2)
    loop.callbacks = [Record(), EpochLearningRate(lambda epoch: 10.0 * epoch)]
    loop.run(seed=0)
    assert calls == [
        ("epoch", 1), ("batch", 0.0), ("backward", 1), ("batch", 0.5), ("backward", 1),
        ("epoch", 2), ("batch", 1.0), ("backward", 2), ("batch", 1.5), ("backward", 2),
    ]  # fmt: skip
    assert loop.optimizer is not None and loop.optimizer.param_groups[0]["lr"] == 20.0


def test_trace_schema_and_budget(tmp_path: Path) -> None:
    task = ScriptedTask([0.0] * 6, "min")
    state = _loop(task, tmp_path, max_minutes=1e-9).run(seed=0, start_fields={"vocab": 7})
    events = [json.loads(x) for x in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["start", "epoch", "valid", "stop"]
    start = events[0]
    assert (start["seed"], start["device"], start["precision"], start["world_size"]) == (
        0, "cpu", "fp32", 1
    )  # fmt: skip
    assert (start["metric"], start["mode"], start["vocab"]) == ("score", "min", 7)
    assert set(start["code"]) == {"version", "commit", "dirty"}
    assert state.stop_reason == "time budget of 1e-09 min reached" and task.steps == 1
