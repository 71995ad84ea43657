"""Search spaces in YAML: one entry per dotted config key.

```yaml
train.lr: {type: float, low: 1.0e-4, high: 1.0, log: true}
model.dim: {type: int, low: 32, high: 256, step: 32}
loss.name: {type: categorical, choices: [sce, sce_ls]}
```

``float`` and ``int`` map to Optuna's ``suggest_float`` / ``suggest_int`` (``log`` or ``step``),
``categorical`` to ``suggest_categorical``. ``grid`` sampling needs every entry enumerable
(categorical, or int/float with a ``step``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from embedlab.config.base import StrictModel
from embedlab.config.io import load_yaml
from embedlab.errors import UserError

Scalar = bool | int | float | str


class FloatRange(StrictModel):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> FloatRange:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError("log: true needs low > 0 and no step")
        return self


class IntRange(StrictModel):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _check(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class Categorical(StrictModel):
    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)


Distribution = Annotated[FloatRange | IntRange | Categorical, Field(discriminator="type")]
_SPACE = TypeAdapter(dict[str, Distribution])


def load_space(path: Path) -> dict[str, FloatRange | IntRange | Categorical]:
    """Parse a search-space YAML file.

    Raises:
        UserError: unreadable file, an empty space, or an invalid entry (named by its key).
    """
    data = load_yaml(path)
    if not data:
        raise UserError(f"search space {path} is empty: give at least one key")
    try:
        return _SPACE.validate_python(data)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise UserError(f"invalid search space ({path}):\n" + "\n".join(lines)) from None


def suggest(trial: Any, space: dict[str, FloatRange | IntRange | Categorical]) -> dict[str, Any]:
    """One value per key from an ``optuna.Trial``."""
    values: dict[str, Any] = {}
    for key, dist in space.items():
        if isinstance(dist, FloatRange):
            values[key] = trial.suggest_float(
                key, dist.low, dist.high, log=dist.log, step=dist.step
            )
        elif isinstance(dist, IntRange):
            values[key] = trial.suggest_int(key, dist.low, dist.high, log=dist.log, step=dist.step)
        else:
            values[key] = trial.suggest_categorical(key, dist.choices)
    return values


def grid(space: dict[str, FloatRange | IntRange | Categorical]) -> dict[str, list[Any]]:
    """Every value of every key (for ``GridSampler``).

    Raises:
        UserError: a float range without ``step``.
    """
    out: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, Categorical):
            out[key] = list(dist.choices)
        elif isinstance(dist, IntRange):
            out[key] = list(range(dist.low, dist.high + 1, dist.step))
        elif dist.step is not None:
            count = int(round((dist.high - dist.low) / dist.step)) + 1
            out[key] = [dist.low + i * dist.step for i in range(count)]
        else:
            raise UserError(f"--sampler grid: {key} is a float range without a step")
    return out
