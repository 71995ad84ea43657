"""One training process per run directory: ``RUN_DIR/.lock``, taken by
:func:`~embedlab.training.run_dir.prepare_run_dir` before it reads or changes anything in the
directory, held until the task's ``train`` returns or fails (:func:`training_scope`).

Two processes training the same directory would interleave their checkpoints and traces (a grid
restarted while its first instance still runs, a second ``train --out`` typed by hand); the
second one is refused with a :class:`~embedlab.errors.UserError` instead. The lock is an OS file
lock (the ``filelock`` package: ``flock`` on POSIX), so a killed process never leaves a stale
lock behind: ``kill -9`` a run and resume it at once. The lock file itself stays (empty).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from embedlab.errors import UserError

LOCK_NAME = ".lock"


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


# run directory (resolved) -> the lock this process holds and the lock file's (device, inode)
_held: dict[Path, tuple[FileLock, tuple[int, int] | None]] = {}


def lock_run_dir(run_dir: Path) -> None:
    """Hold ``run_dir/.lock`` for this process (``run_dir`` must exist); a no-op where this
    process holds that very file already. A filesystem without file locks gets a warning and
    no lock.

    Raises:
        UserError: another process holds it (is training ``run_dir`` now).
    """
    key = run_dir.resolve()
    path = key / LOCK_NAME
    if key in _held:
        if _held[key][1] is not None and _held[key][1] == _identity(path):
            return
        release_run_dir(key)  # the directory was deleted and made again: lock the new file
    lock = FileLock(path, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(
            f"{run_dir} is being trained by another process now (it holds {path}). "
            "Wait for it to finish or stop it, then run again; or use another --out."
        ) from None
    except (NotImplementedError, OSError) as exc:
        warnings.warn(f"cannot lock {path} ({exc}): nothing stops a second process from "
                      "training this run directory at the same time", stacklevel=2)  # fmt: skip
        return
    _held[key] = (lock, _identity(path))


def release_run_dir(run_dir: Path) -> None:
    """Let go of ``run_dir/.lock`` if this process holds it (else nothing)."""
    held = _held.pop(run_dir.resolve(), None)
    if held is not None:
        held[0].release(force=True)


def holds_run_dir(run_dir: Path) -> bool:
    """Whether this process holds ``run_dir``'s lock."""
    return run_dir.resolve() in _held


@contextmanager
def training_scope(run_dir: Path) -> Iterator[None]:
    """The span of one ``train`` call: whatever lock ``prepare_run_dir`` takes inside it is let
    go when the block ends, normally or not (an error before training, Ctrl-C in a notebook)."""
    key = run_dir.resolve()  # resolved once: a chdir inside the block does not lose the lock
    try:
        yield
    finally:
        release_run_dir(key)
