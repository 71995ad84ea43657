"""One training process per run directory: ``RUN_DIR/.lock``, held from the moment ``train``
prepares the directory until it has written ``metrics.json`` (or the process ends).

Two processes training the same directory would interleave their checkpoints and traces (a grid
restarted while its first instance still runs, a second ``train --out`` typed by hand); the
second one is refused with a :class:`~embedlab.errors.UserError` instead. The lock is an OS file
lock (the ``filelock`` package: ``flock`` on POSIX), so a killed process never leaves a stale
lock behind: ``kill -9`` a run and resume it at once.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from embedlab.errors import UserError

LOCK_NAME = ".lock"

_held: dict[Path, FileLock] = {}  # run directory (resolved) -> the lock this process holds


def lock_run_dir(run_dir: Path) -> None:
    """Hold ``run_dir/.lock`` for this process (``run_dir`` must exist); a no-op where this
    process holds it already (a run resumed in the same process).

    Raises:
        UserError: another process holds it (is training ``run_dir`` now).
    """
    key = run_dir.resolve()
    if key in _held:
        return
    lock = FileLock(key / LOCK_NAME, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(
            f"{run_dir} is being trained by another process now (it holds {key / LOCK_NAME}). "
            "Wait for it to finish or stop it, then run again; or use another --out."
        ) from None
    _held[key] = lock


def release_run_dir(run_dir: Path) -> None:
    """Let go of ``run_dir/.lock`` if this process holds it (else nothing)."""
    lock = _held.pop(run_dir.resolve(), None)
    if lock is not None:
        lock.release(force=True)


def holds_run_dir(run_dir: Path) -> bool:
    """Whether this process holds ``run_dir``'s lock."""
    return run_dir.resolve() in _held
