"""Run directories: create, or check that a re-run may resume (ARCHITECTURE.md, run contract)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from embedlab.config.io import dump_config
from embedlab.errors import UserError


def prepare_run_dir(run_dir: Path, config: BaseModel, *, overwrite: bool) -> bool:
    """Create ``run_dir`` or check it can be resumed. Returns True when resuming.

    Re-running ``train`` on an existing run directory resumes from ``checkpoints/last`` if the
    resolved config is the same; ``overwrite`` deletes the directory and starts afresh.

    Raises:
        UserError: the directory holds a run with a different config (and no ``overwrite``).
    """
    saved = run_dir / "config.yaml"
    if run_dir.is_file():
        raise UserError(f"--out {run_dir} is a file, not a run directory")
    if run_dir.exists() and overwrite:
        if not saved.is_file() and any(run_dir.iterdir()):
            raise UserError(
                f"refusing to --overwrite {run_dir}: it is not empty and holds no run (no config.yaml)"
            )
        shutil.rmtree(run_dir)
    if saved.is_file():
        previous = _flatten(yaml.safe_load(saved.read_text(encoding="utf-8")) or {})
        current = _flatten(config.model_dump(mode="json"))
        differing = sorted(
            k for k in previous.keys() | current.keys() if previous.get(k) != current.get(k)
        )
        if differing:
            raise UserError(
                f"{run_dir} already holds a run with a different config ({', '.join(differing)}). "
                "Use another --out, or --overwrite to delete it and start again."
            )
        return True
    run_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(dump_config(config), encoding="utf-8")
    return False


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
