"""Typed experiment configs: YAML files plus dotted ``--set key=value`` overrides.

Every key is validated by pydantic; unknown keys and wrong types are rejected with the key's dotted
name (:class:`~embedlab.errors.UserError`). The resolved config (every default filled in) is what a
run directory stores in ``config.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from embedlab.errors import UserError

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and YAML-parsed value.

    Raises:
        UserError: when ``=`` or the key is missing.
    """
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key=value (e.g. train.lr=0.1), got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise UserError(f"--set {item}: the value is not valid YAML; quote it") from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted ``key=value`` overrides to a nested dict (in place) and return it."""
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UserError(f"--set {item}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")  # a validator's message names its keys
        key = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {key}: {msg}" if key else f"  {msg}")
    return f"invalid config ({source}):\n" + "\n".join(lines)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping raises :class:`UserError`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping at the top level")
    return data


def build_typed_config(
    cls: type[ConfigT],
    *,
    path: Path | None = None,
    overrides: list[str] | None = None,
    base: dict | None = None,
) -> ConfigT:
    """Resolve a config of type ``cls`` from an optional YAML file, a base dict and overrides.

    Raises:
        UserError: unknown keys, wrong types or values, unreadable files; the message names keys.
    """
    data: dict[str, Any] = dict(base or {})
    if path is not None:
        data.update(load_yaml(path))
    apply_overrides(data, overrides or [])
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise UserError(_format_validation_error(exc, str(path or "command line"))) from None


def dump_config(config: BaseModel) -> str:
    """The fully resolved config as YAML (what ``RUN_DIR/config.yaml`` holds)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
