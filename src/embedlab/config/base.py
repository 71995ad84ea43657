"""The strict base model of every config section."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config section: unknown keys are rejected, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def merge_defaults(defaults: dict[str, Any], given: Any) -> Any:
    """``given`` deep-merged over ``defaults`` (keys of ``given`` win; nested dicts merge).

    A non-mapping ``given`` (an already built model, or a wrong type that validation will
    reject with the key's name) is returned unchanged.
    """
    if not isinstance(given, dict):
        return given
    merged: dict[str, Any] = dict(defaults)
    for key, value in given.items():
        base = merged.get(key)
        merged[key] = merge_defaults(base, value) if isinstance(base, dict) else value
    return merged
