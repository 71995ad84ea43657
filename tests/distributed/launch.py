"""Start ``torchrun`` jobs of 2 CPU (gloo) ranks from tests: the CLI or a worker script."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parents[1])}


def torchrun_argv(nproc: int, *target: str) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node N`` + target."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={nproc}", *target,
    ]  # fmt: skip


def node_argv(endpoint: str, nnodes: int, *target: str) -> list[str]:
    """One node's launcher of a multi-node job (c10d rendezvous at ``endpoint``), one process."""
    return [
        sys.executable, "-m", "torch.distributed.run", f"--nnodes={nnodes}",
        "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}",
        "--rdzv-id=embedlab-test", *target,
    ]  # fmt: skip


def cli_argv(nproc: int | None, *args: str) -> list[str]:
    """``embedlab`` under torchrun with ``nproc`` ranks, or a plain process (``None``)."""
    if nproc is None:
        return [sys.executable, "-m", "embedlab", *args]
    return torchrun_argv(nproc, "-m", "embedlab", *args)


def run(
    argv: list[str], *, check: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done


def start(argv: list[str]) -> subprocess.Popen:
    """A job in its own process group (so the whole job can be killed at once)."""
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), start_new_session=True
    )


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc: torchrun starts its workers in their own
    sessions, so killing its process group would leave them running)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_job_after(proc: subprocess.Popen, path: Path, timeout: float = 120) -> None:
    """SIGKILL the launcher and every worker of the job as soon as ``path`` exists."""
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the job ended before it could be killed"
    for pid in [proc.pid, *_descendants(proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.communicate()
