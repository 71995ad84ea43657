"""Run directories (ARCHITECTURE.md, run contract): create one, check that a re-run may resume,
and read a trained run back (config + selected checkpoint) — one reader for every task."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import BaseModel, ValidationError

from embedlab.config.io import ConfigT, dump_config
from embedlab.datasets.registry import REGISTRY
from embedlab.distributed import World, broadcast_object
from embedlab.errors import UserError
from embedlab.training.checkpoint import checkpoint_exists, load_checkpoint
from embedlab.training.run_lock import LOCK_NAME, lock_run_dir, release_run_dir


@dataclass(frozen=True)
class RunPaths:
    """The files of a run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last"

    @property
    def best(self) -> Path:
        return self.root / "checkpoints" / "best"

    @property
    def trace(self) -> Path:
        return self.root / "trace.jsonl"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def with_absolute_paths(config: ConfigT) -> ConfigT:
    """``config`` with its paths made absolute, so that the run directory resumes and evaluates
    from any working directory: ``dataset`` where it names a directory (not a registry name) and
    ``train.init_from`` where the config has that key and sets it (``~`` expanded)."""
    update: dict[str, object] = {}
    dataset = getattr(config, "dataset", None)
    if isinstance(dataset, str) and dataset not in REGISTRY and Path(dataset).is_dir():
        update["dataset"] = str(Path(dataset).resolve())
    train = getattr(config, "train", None)
    source = getattr(train, "init_from", None)
    if isinstance(train, BaseModel) and source:
        update["train"] = train.model_copy(update={"init_from": _absolute(source)})
    return config.model_copy(update=update) if update else config


def will_resume(run_dir: Path, *, overwrite: bool) -> bool:
    """Whether ``train`` on ``run_dir`` resumes from ``checkpoints/last``: it holds a run's
    config and last checkpoint and ``overwrite`` is off. A resumed run reads its initial state
    (teachers, ``train.init_from`` tables) from the checkpoint, not from their sources."""
    saved = (run_dir / "config.yaml").is_file()
    return not overwrite and saved and checkpoint_exists(RunPaths(run_dir).last)


def config_differences(run_dir: Path, config: BaseModel) -> list[str]:
    """The dotted keys whose value in ``run_dir/config.yaml`` (the config the run was started
    with) differs from ``config`` (with its paths made absolute: :func:`with_absolute_paths`),
    sorted; empty when they are the same run.

    Raises:
        FileNotFoundError: ``run_dir`` has no ``config.yaml``.
    """
    saved = run_dir / "config.yaml"
    previous = flatten(yaml.safe_load(saved.read_text(encoding="utf-8")) or {})
    # a run saved before its paths were made absolute compares as if they had been
    source = previous.get("train.init_from")
    if isinstance(source, str) and source:
        previous["train.init_from"] = _absolute(source)
    current = flatten(with_absolute_paths(config).model_dump(mode="json"))
    return sorted(k for k in previous.keys() | current.keys() if previous.get(k) != current.get(k))


def prepare_run_dir(run_dir: Path, config: BaseModel, *, overwrite: bool) -> bool:
    """Create ``run_dir`` or check it can be resumed. Returns True when resuming.

    Re-running ``train`` on an existing run directory resumes from ``checkpoints/last`` if the
    resolved config is the same; ``overwrite`` empties the directory and starts afresh. This
    process holds the directory's lock (:mod:`embedlab.training.run_lock`) from before the
    first check; the task's ``train`` lets go of it when it ends
    (:func:`~embedlab.training.run_lock.training_scope`).

    Raises:
        UserError: another process is training ``run_dir`` now, or the directory holds a run
            with a different config (and no ``overwrite``).
    """
    if run_dir.is_file():
        raise UserError(f"--out {run_dir} is a file, not a run directory")
    if overwrite:  # refused before the lock file is made, so a refusal leaves nothing behind
        _refuse_overwriting_a_non_run(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_run_dir(run_dir)  # before anything is read or deleted
    try:
        return _prepare_locked(run_dir, config, overwrite=overwrite)
    except BaseException:
        release_run_dir(run_dir)
        raise


def _refuse_overwriting_a_non_run(run_dir: Path) -> None:
    """Raises UserError: ``run_dir`` holds files (besides a lock) but no ``config.yaml``."""
    if not run_dir.is_dir() or (run_dir / "config.yaml").is_file():
        return
    if any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise UserError(
            f"refusing to --overwrite {run_dir}: it is not empty and holds no run (no config.yaml)"
        )


def _prepare_locked(run_dir: Path, config: BaseModel, *, overwrite: bool) -> bool:
    saved = run_dir / "config.yaml"
    if overwrite:
        _refuse_overwriting_a_non_run(run_dir)  # again, under the lock
        contents = [p for p in run_dir.iterdir() if p.name != LOCK_NAME]
        for path in contents:  # the lock file stays: the lock is never let go in between
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    if saved.is_file():
        differing = config_differences(run_dir, config)
        if differing:
            raise UserError(
                f"{run_dir} already holds a run with a different config ({', '.join(differing)}). "
                "Use another --out, or --overwrite to delete it and start again."
            )
        return True
    saved.write_text(dump_config(config), encoding="utf-8")
    return False


def prepare_shared_run_dir(
    run_dir: Path, config: BaseModel, *, overwrite: bool, world: World
) -> bool:
    """:func:`prepare_run_dir` on rank 0 alone (the run directory is rank 0's to write; in a
    multi-node job it must be on a filesystem every node sees, as checkpoints are read by every
    rank on resume); its result, or its error, on every rank."""
    outcome: tuple[bool, str] = (False, "")
    if world.is_main:
        try:
            outcome = (prepare_run_dir(run_dir, config, overwrite=overwrite), "")
        except UserError as exc:
            outcome = (False, str(exc))
    outcome = broadcast_object(outcome, world)
    if outcome[1]:
        raise UserError(outcome[1])
    return outcome[0]


def read_run_config(run_dir: Path, cls: type[ConfigT]) -> ConfigT:
    """The resolved config a run directory holds, validated as ``cls``.

    Raises:
        UserError: no ``config.yaml``, or one that is not a valid ``cls``.
    """
    path = RunPaths(run_dir).config
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.yaml)")
    try:
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (ValidationError, yaml.YAMLError) as exc:
        raise UserError(f"{path} is not a valid {cls.__name__} run config: {exc}") from None


def load_trained(
    run_dir: Path, model: torch.nn.Module, *, fits: str, map_location: torch.device | str = "cpu"
) -> Path:
    """Load the best (else last) checkpoint of ``run_dir`` into ``model``; return its path.

    ``fits`` describes what the model was built for (named in the error when shapes differ).

    Raises:
        UserError: no checkpoint yet, or one that does not fit ``model``.
    """
    paths = RunPaths(run_dir)
    for ckpt in (paths.best, paths.last):
        if checkpoint_exists(ckpt):
            try:
                load_checkpoint(ckpt, model=model, map_location=map_location)
            except (RuntimeError, KeyError) as exc:
                raise UserError(
                    f"{ckpt}.safetensors does not fit {fits} as resolved now: {exc}"
                ) from None
            return ckpt
    raise UserError(f"{run_dir} has no checkpoint yet (train it first)")


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (leaves kept as they are)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
