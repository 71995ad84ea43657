"""Keys every task shares: the run level (``seed``, ``device``) and the loop (``train.*``).

Each task family's config subclasses :class:`RunConfig`, and its ``train`` section subclasses
:class:`LoopConfig` (redeclaring a field only to change its default), so the one loop of
``training/loop.py`` reads the same keys for KGE, MF and LM.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from embedlab.config.base import StrictModel

DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]+)?)$"


class TrackerConfig(StrictModel):
    """``tracker``: an experiment tracker beside ``trace.jsonl`` (:mod:`embedlab.training.trackers`).

    ``tracker: tensorboard`` is short for ``tracker: {kind: tensorboard}``.
    """

    kind: Literal["none", "tensorboard", "mlflow"] = "none"
    uri: str | None = Field(
        default=None,
        description="tensorboard: log directory (default RUN_DIR/tensorboard); mlflow: tracking "
        "URI (default $MLFLOW_TRACKING_URI, else sqlite:///<parent of RUN_DIR>/mlflow.db)",
    )
    experiment: str = Field(default="embedlab", description="mlflow experiment name")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value


class RunConfig(StrictModel):
    """Top-level keys of every run config."""

    seed: int = 0
    device: str = Field(
        default="auto",
        pattern=DEVICE_PATTERN,
        description="auto (cuda when available, else cpu) | cpu | cuda | cuda:N",
    )
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)


class LoopConfig(StrictModel):
    """``train.*`` keys the loop reads (each task adds its own)."""

    max_epochs: int = Field(default=100, ge=0)
    max_minutes: float | None = Field(default=None, gt=0, description="wall-clock training budget")
    early_stopping_patience: int = Field(
        default=0, ge=0, description="validations without gain of the validation metric; 0 disables"
    )
    checkpoint_every: int = Field(default=1, gt=0, description="epochs between last-checkpoints")
    num_threads: int | None = Field(default=None, gt=0, description="torch CPU threads")
    precision: Literal["fp32", "bf16"] = Field(
        default="fp32",
        description="bf16: autocast of the training forward pass (loss accumulated in fp32)",
    )


class LoopEvalConfig(StrictModel):
    """``eval.*`` keys the loop reads."""

    every: int = Field(default=5, gt=0, description="epochs between validations")
