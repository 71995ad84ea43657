"""Experiment trackers beside ``trace.jsonl``: TensorBoard and MLflow (``tracker:`` config key).

A tracker is a :class:`~embedlab.training.callbacks.Callback` that mirrors trace records as they
are written (rank 0 only), so every task (KGE, MF, LM) is tracked the same way:

* ``start``: the resolved ``RUN_DIR/config.yaml``, flattened (``train.lr``), as hyper-parameters
  (MLflow params; TensorBoard text ``config``).
* ``epoch``, ``valid``, ``test``: every numeric field as a scalar ``<event>/<field>`` at step
  ``epoch`` (nested dicts flattened with dots: ``valid/head.mrr``, ``test/mrr``; MLflow names
  cannot hold ``@``: ``valid/hits_at_10`` there, ``valid/hits@10`` in TensorBoard).
* ``resume``: TensorBoard drops the scalars after the checkpoint's epoch (``purge_step``), the
  steps that the resumed run trains again; MLflow continues the same run (its id is kept in
  ``RUN_DIR/tracker.json``) and records the re-done epochs a second time at the same steps.

Both packages are optional extras (``pip install embedlab[tracking]``): choosing a tracker without
its package raises :class:`~embedlab.errors.UserError` naming the extra.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from embedlab.errors import UserError
from embedlab.training.callbacks import Callback
from embedlab.training.config import TrackerConfig
from embedlab.training.run_dir import RunPaths, flatten

TRACKED = ("epoch", "valid", "test")


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """Numeric fields of a trace record as ``<event>/<field>`` (bools, ``time``, ``epoch`` out)."""
    fields = {k: v for k, v in record.items() if k not in ("event", "time", "epoch")}
    return {
        f"{record['event']}/{k}": float(v)
        for k, v in flatten(fields).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _config_params(paths: RunPaths) -> dict[str, str]:
    config = yaml.safe_load(paths.config.read_text()) if paths.config.is_file() else {}
    return {k: str(v) for k, v in flatten(config or {}).items()}


class TensorBoardTracker(Callback):
    """Writes scalars with ``torch.utils.tensorboard.SummaryWriter`` to ``log_dir``."""

    def __init__(self, *, paths: RunPaths, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # torch's writer needs the tensorboard package
            raise UserError(
                "tracker: tensorboard needs the tensorboard package: "
                "pip install 'embedlab[tracking]'"
            ) from err
        self._writer_type, self.paths, self.log_dir = SummaryWriter, paths, log_dir
        self.writer: Any = None

    def _open(self, purge_step: int | None = None) -> Any:
        if self.writer is not None:
            self.writer.close()
        self.writer = self._writer_type(log_dir=str(self.log_dir), purge_step=purge_step)
        return self.writer

    def on_trace(self, record: dict[str, Any]) -> None:
        event = record["event"]
        if event == "resume":  # epochs after the checkpoint are trained again
            self._open(purge_step=int(record["epoch"]) + 1)
            return
        writer = self.writer or self._open()
        if event == "start":
            text = "\n".join(f"    {k}: {v}" for k, v in _config_params(self.paths).items())
            writer.add_text("config", text)
        elif event in TRACKED:
            step = int(record.get("epoch") or 0)
            for tag, value in scalars(record).items():
                writer.add_scalar(tag, value, global_step=step)
        writer.flush()
        if event == "test":
            writer.close()
            self.writer = None


class MlflowTracker(Callback):
    """Logs params and metrics to an MLflow tracking server or database (``MlflowClient``)."""

    def __init__(self, *, paths: RunPaths, uri: str, experiment: str) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as err:
            raise UserError(
                "tracker: mlflow needs the mlflow-skinny package: pip install 'embedlab[tracking]'"
            ) from err
        self.client, self.paths, self.experiment = MlflowClient(uri), paths, experiment
        self.uri = uri
        self.run_id: str | None = None

    @property
    def _state_file(self) -> Path:
        return self.paths.root / "tracker.json"

    def _run(self) -> str:
        if self.run_id is not None:
            return self.run_id
        if self._state_file.is_file():  # a resumed run continues its MLflow run
            self.run_id = str(json.loads(self._state_file.read_text())["mlflow_run_id"])
            return self.run_id
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = (
            found.experiment_id if found else self.client.create_experiment(self.experiment)
        )
        run = self.client.create_run(experiment_id, run_name=self.paths.root.name)
        self.run_id = run.info.run_id
        self._state_file.write_text(
            json.dumps({"mlflow_run_id": self.run_id, "uri": self.uri}, indent=2) + "\n"
        )
        return self.run_id

    def on_trace(self, record: dict[str, Any]) -> None:
        event = record["event"]
        if event == "start":
            run_id = self._run()
            for key, value in _config_params(self.paths).items():
                self.client.log_param(run_id, key, value[:6000])
            self.client.set_tag(run_id, "run_dir", str(self.paths.root.resolve()))
        elif event in TRACKED:
            run_id, step = self._run(), int(record.get("epoch") or 0)
            for name, number in scalars(record).items():  # MLflow names refuse "@"
                self.client.log_metric(run_id, name.replace("@", "_at_"), number, step=step)
        if event == "test":
            self.client.set_terminated(self._run())


def build_trackers(config: TrackerConfig, paths: RunPaths, *, is_main: bool) -> list[Callback]:
    """The tracker callbacks of ``config`` (none on ranks other than 0)."""
    if config.kind == "none" or not is_main:
        return []
    if config.kind == "tensorboard":
        log_dir = Path(config.uri) if config.uri else paths.root / "tensorboard"
        return [TensorBoardTracker(paths=paths, log_dir=log_dir)]
    default = f"sqlite:///{paths.root.resolve().parent / 'mlflow.db'}"
    uri = config.uri or os.environ.get("MLFLOW_TRACKING_URI") or default
    return [MlflowTracker(paths=paths, uri=uri, experiment=config.experiment)]
