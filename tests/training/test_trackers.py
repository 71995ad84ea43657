"""Trackers (``tracker: tensorboard | mlflow``): a short KGE run writes readable events whose
values equal the trace's; a resumed run continues the same MLflow run; unit tests of flattening."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from embedlab.errors import UserError
from embedlab.kge.run import train_run
from embedlab.training.config import TrackerConfig
from embedlab.training.loop import Loop
from embedlab.training.trace import events_of_final_history, read_trace
from embedlab.training.trackers import build_trackers, flatten, scalars
from tests.conftest import fast_config


def test_flatten_and_scalars() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": 2}) == {"a.b": 1, "a.c.d": "x", "e": 2}
    record = {"event": "valid", "time": 5.0, "epoch": 2, "mrr": 0.5, "head": {"mrr": 0.25},
              "flag": True, "name": "x", "count": 3}  # fmt: skip
    assert scalars(record) == {"valid/mrr": 0.5, "valid/head.mrr": 0.25, "valid/count": 3.0}


def test_config_shorthand_and_no_tracker_off_rank_zero(tmp_path: Path) -> None:
    assert TrackerConfig.model_validate("tensorboard").kind == "tensorboard"
    with pytest.raises(ValueError, match="kind"):
        TrackerConfig.model_validate("wandb")
    from embedlab.training.run_dir import RunPaths

    assert build_trackers(TrackerConfig(kind="mlflow"), RunPaths(tmp_path), is_main=False) == []


def _trace_values(run: Path, event: str, key: str) -> list[tuple[int, float]]:
    events = events_of_final_history(read_trace(run / "trace.jsonl"), event)
    return [(int(e["epoch"]), float(e[key])) for e in events]


def test_tensorboard_events_equal_the_trace(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train_run(fast_config("nations", tracker="tensorboard"), run, progress=False)
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    got = [(e.step, e.value) for e in acc.Scalars("valid/mrr")]
    want = _trace_values(run, "valid", "mrr")
    assert [s for s, _ in got] == [s for s, _ in want] == [2, 4]
    assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6)
    assert [e.step for e in acc.Scalars("epoch/loss")] == [1, 2, 3, 4]
    assert acc.Scalars("test/mrr")[0].value == pytest.approx(
        _trace_values(run, "test", "mrr")[0][1]
    )
    assert "config/text_summary" in acc.Tags()["tensors"]  # the resolved config as text


def _crash_at_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """The loop dies when it starts ``epoch`` (after the previous epoch's checkpoint)."""
    original = Loop._train_epoch

    def train_epoch(self: Loop, generator: Any) -> Any:
        if self.state.epoch == epoch:
            raise KeyboardInterrupt
        return original(self, generator)

    monkeypatch.setattr(Loop, "_train_epoch", train_epoch)


def test_mlflow_run_has_params_metrics_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = fast_config(
        "nations", **{"tracker.kind": "mlflow", "tracker.uri": uri, "tracker.experiment": "t"}
    )
    run = tmp_path / "run"
    _crash_at_epoch(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, run, progress=False)
    first = (run / "tracker.json").read_text()
    monkeypatch.undo()
    train_run(config, run, progress=False)  # resumes after epoch 2
    assert any(e["event"] == "resume" for e in read_trace(run / "trace.jsonl"))
    assert (run / "tracker.json").read_text() == first  # the same MLflow run continues
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("t").experiment_id])
    assert len(runs) == 1
    assert runs[0].data.params["model.dim"] == "16"
    assert runs[0].data.params["dataset"] == "nations"
    history = client.get_metric_history(runs[0].info.run_id, "valid/mrr")
    got = sorted((m.step, m.value) for m in history)
    want = sorted(_trace_values(run, "valid", "mrr"))
    assert [s for s, _ in got] == [s for s, _ in want] == [2, 4]
    assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6)
    hits = client.get_metric_history(runs[0].info.run_id, "test/hits_at_10")
    assert hits[0].value == pytest.approx(_trace_values(run, "test", "hits@10")[0][1])
    assert runs[0].info.status == "FINISHED"


def test_tensorboard_resume_drops_the_redone_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    config = fast_config("nations", tracker="tensorboard", **{"eval.every": 1})
    _crash_at_epoch(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, run, progress=False)
    monkeypatch.undo()
    train_run(config, run, progress=False)
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("valid/mrr")] == [1, 2, 3, 4]  # each epoch once


def test_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from embedlab.training.run_dir import RunPaths

    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(UserError, match=r"embedlab\[tracking\]"):
        build_trackers(TrackerConfig(kind="mlflow"), RunPaths(tmp_path), is_main=True)
