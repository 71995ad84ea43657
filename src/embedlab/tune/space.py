"""Search spaces in YAML: one entry per dotted config key.

```yaml
train.lr: {type: float, low: 1.0e-4, high: 1.0, log: true}
model.dim: {type: int, low: 32, high: 256, step: 32}
loss.name: {type: categorical, choices: [sce, sce_ls]}
regularizer:            # a label, not a config key: each choice sets several keys together
  type: group
  choices:
    light: {train.weight_decay: 0.01, entity_embedding.dropout: 0.1}
    heavy: {train.weight_decay: 0.1, entity_embedding.dropout: 0.3}
```

``float`` and ``int`` map to Optuna's ``suggest_float`` / ``suggest_int`` (``log`` or ``step``),
``categorical`` to ``suggest_categorical``. A ``group`` (Hydra's config groups) is a categorical
over named sets of settings: Optuna sees the choice's name (the trial's param), the trial runs
with every key of that set; it expresses hand-paired settings that are not a product of
per-key ranges. No config key may be set by two entries. ``grid`` sampling needs every entry
enumerable (categorical, group, or int/float with a ``step``).
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


class Group(StrictModel):
    type: Literal["group"]
    choices: dict[str, dict[str, Scalar]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Group:
        empty = [name for name, settings in self.choices.items() if not settings]
        if empty:
            raise ValueError(f"choice {empty[0]!r} sets no key")
        return self


Distribution = Annotated[FloatRange | IntRange | Categorical | Group, Field(discriminator="type")]
Space = dict[str, FloatRange | IntRange | Categorical | Group]
_SPACE = TypeAdapter(dict[str, Distribution])


def load_space(path: Path) -> Space:
    """Parse a search-space YAML file.

    Raises:
        UserError: unreadable file, an empty space, an invalid entry (named by its key), or a
            config key set by two entries.
    """
    data = load_yaml(path)
    if not data:
        raise UserError(f"search space {path} is empty: give at least one key")
    try:
        space = _SPACE.validate_python(data)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise UserError(f"invalid search space ({path}):\n" + "\n".join(lines)) from None
    owner: dict[str, str] = {}
    for entry, dist in space.items():
        keys = {k for c in dist.choices.values() for k in c} if isinstance(dist, Group) else {entry}
        for key in sorted(keys):
            if owner.setdefault(key, entry) != entry:
                raise UserError(
                    f"invalid search space ({path}): {key} is set by both {owner[key]} and {entry}"
                )
    return space


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """One value per entry from an ``optuna.Trial`` (a group: the name of its choice); the
    config keys they set are :func:`settings`."""
    values: dict[str, Any] = {}
    for key, dist in space.items():
        if isinstance(dist, FloatRange):
            values[key] = trial.suggest_float(
                key, dist.low, dist.high, log=dist.log, step=dist.step
            )
        elif isinstance(dist, IntRange):
            values[key] = trial.suggest_int(key, dist.low, dist.high, log=dist.log, step=dist.step)
        elif isinstance(dist, Group):
            values[key] = trial.suggest_categorical(key, list(dist.choices))
        else:
            values[key] = trial.suggest_categorical(key, dist.choices)
    return values


def settings(space: Space, params: dict[str, Any]) -> dict[str, Any]:
    """The config keys and values a trial's ``params`` stand for (groups expanded), in the
    space's order.

    Raises:
        UserError: a param the space does not have (e.g. a study created with another space).
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        dist = space.get(key)
        if dist is None or (isinstance(dist, Group) and value not in dist.choices):
            raise UserError(f"the study's {key}={value!r} is not in the search space")
        out.update(dist.choices[value] if isinstance(dist, Group) else {key: value})
    return out


def grid(space: Space) -> dict[str, list[Any]]:
    """Every value of every entry (for ``GridSampler``; a group: its choices' names).

    Raises:
        UserError: a float range without ``step``.
    """
    out: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, Group | Categorical):  # a group: its choices' names
            out[key] = list(dist.choices)
        elif isinstance(dist, IntRange):
            out[key] = list(range(dist.low, dist.high + 1, dist.step))
        elif dist.step is not None:
            count = int(round((dist.high - dist.low) / dist.step)) + 1
            out[key] = [dist.low + i * dist.step for i in range(count)]
        else:
            raise UserError(f"--sampler grid: {key} is a float range without a step")
    return out
