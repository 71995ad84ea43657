"""What the long, resumable experiment grids share (benchmarks/table2_grid.py, kd_lm_grid.py,
sse_nmt_grid.py): one process per cell with its log, peak resident memory and wall time; each
finished cell merged into the results JSON at once (atomic rewrite), so an interrupted grid keeps
every finished cell and a re-started one skips them; the commit that produced it; a PAUSE file that
holds the next cell (the running one finishes), so a timing benchmark can have the machine to
itself; a refusal to mix cells of different budgets in one JSON; and a lock so that two grids never
train into the same run directories. A cell whose process failed (non-zero exit: killed, out of
memory) is stored with its return code and run again, resuming from its last checkpoint, when the
grid is started again. ``parallel`` > 1 runs that many cells at once (for grids whose budget is
epochs, not minutes: two one-thread processes train more tokens per second on this 2-core CPU
than one two-thread process); a cell whose prerequisite another running cell will write waits.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# the cells' processes now running (several with ``drain(parallel=N)``), terminated on interrupt
_CHILDREN: set[subprocess.Popen[bytes]] = set()
_CHILDREN_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set (under the lock) when the grid is interrupted


def log(message: str) -> None:
    """One timestamped progress line on stdout (the grids' logs are stdout redirected)."""
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def load(path: Path) -> dict[str, Any]:
    """The results JSON, or ``{}`` before the first cell lands."""
    return json.loads(path.read_text()) if path.is_file() else {}


def store(path: Path, key: str, row: dict[str, Any], budget: dict[str, Any]) -> None:
    """Merge ``row`` as ``cells[key]`` into the JSON at ``path`` (written to a temporary file,
    then renamed over the old one: a kill mid-write never leaves half a file). The budget is the
    one recorded with the first cell; each row names its own machine."""
    data = load(path)
    data.setdefault("budget", budget)
    data.setdefault("cells", {})[key] = row
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def git_commit() -> str:
    """HEAD of this checkout, ``+dirty`` when ``src/`` or ``configs/`` has uncommitted changes."""
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "src", "configs"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return out.stdout.strip() + ("+dirty" if dirty else "")


def machine() -> str:
    """``"<cores> cores, <CPU model>"`` (the model from /proc/cpuinfo where there is one)."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores" + (f", {model}" if model else "")


def run_logged(command: Sequence[str], log_path: Path) -> dict[str, Any]:
    """Run ``command`` from the repository root with stdout and stderr appended to ``log_path``.

    Returns ``returncode``, ``wall_seconds``, ``peak_rss_gib`` (the child's peak resident set,
    from ``wait4``), ``commit`` (this checkout's when the process started: a checkout updated
    while it ran does not relabel it), ``machine``, ``ld_preload`` (the grid's ``LD_PRELOAD``,
    e.g. tcmalloc: it changes the speed, never a result; None when unset), ``finished`` (UTC,
    ISO 8601) and ``command`` (as a user would type it: ``embedlab ...`` for the console script). If the grid itself is
    interrupted (Ctrl-C, SIGTERM) the child is terminated first, so it never trains on unseen.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    start = time.monotonic()
    with log_path.open("a") as stream:
        proc = subprocess.Popen(list(command), stdout=stream, stderr=subprocess.STDOUT, cwd=ROOT)
        with _CHILDREN_LOCK:
            _CHILDREN.add(proc)
            if _STOPPING.is_set():  # started after the interrupt's sweep: never let it train
                proc.terminate()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
        finally:
            with _CHILDREN_LOCK:
                _CHILDREN.discard(proc)
    proc.returncode = os.waitstatus_to_exitcode(status)
    shown = list(command)
    if Path(shown[0]).name == "embedlab":
        shown[0] = "embedlab"
    return {"returncode": proc.returncode, "wall_seconds": round(time.monotonic() - start, 1),
            "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3), "commit": commit,
            "machine": machine(), "ld_preload": os.environ.get("LD_PRELOAD") or None,
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join(shown)}  # fmt: skip


def train_cell(
    *,
    embedlab: Path,
    runs: Path,
    key: str,
    task: str,
    config: Path,
    sets: Sequence[str],
    options: Sequence[str] = (),
    fields: dict[str, Any],
    extract: Callable[[dict[str, Any]], dict[str, Any]],
    quality: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """One cell: ``embedlab <task> train --config <config> --out <runs>/<key> <options>
    --set ...`` (:func:`run_logged`, log ``<runs>/<key>.log``); the row is ``fields``, the
    process record, ``trained_by`` (the commits recorded by the ``start`` and ``resume`` events
    of the run's trace: more than one when a killed run was resumed under other code; ``commit``
    is the first of them, the one the run started on, and ``commit_recorded_by_grid`` this
    process's checkout when it differs) and
    ``extract(metrics.json)`` when the run finished; ``quality(row)`` goes into the progress line
    (e.g. ``"test MRR 0.43"``)."""
    out = runs / key
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [str(embedlab), task, "train", "--config", str(config), "--out", str(out),
               *options, *(x for s in sets for x in ("--set", s))]  # fmt: skip
    row = dict(fields) | run_logged(command, runs / f"{key}.log")
    row["trained_by"] = trace_commits(out / "trace.jsonl")
    started = row["trained_by"][0] if row["trained_by"] else None
    if started and started.removesuffix("+dirty") != row["commit"].removesuffix("+dirty"):
        # resumed from a run that an earlier process started on other code: the row's commit is
        # the one the run started on; this process's checkout is kept beside it
        row["commit_recorded_by_grid"], row["commit"] = row["commit"], started
    metrics = out / "metrics.json"
    if row["returncode"] == 0 and metrics.is_file():
        row |= extract(json.loads(metrics.read_text()))
    log(f"{key}: rc {row['returncode']}, {row['wall_seconds']:.0f} s, "
        f"peak {row['peak_rss_gib']} GiB, {quality(row)}")  # fmt: skip
    return row


def trace_commits(trace: Path) -> list[str]:
    """The distinct ``code.commit`` values of the last ``start`` event of a run's trace and of
    the ``resume`` events after it (one per process that trained the result), in order
    (``+dirty`` appended where the tree had uncommitted changes); empty without a trace. A run
    restarted from scratch (killed before its first checkpoint) appends a new ``start``: the
    processes before it trained nothing that is kept. Traces written before resume events
    carried ``code`` (2026-12-02) name only the starting process's commit."""
    commits: list[str] = []
    if not trace.is_file():
        return commits
    for line in trace.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        code = event.get("code") or {}
        if event.get("event") == "start":
            commits = []
        if event.get("event") in ("start", "resume") and code.get("commit"):
            name = code["commit"] + ("+dirty" if code.get("dirty") else "")
            if name not in commits:
                commits.append(name)
    return commits


def wait_while_paused(runs: Path, *, poll_seconds: float = 10.0) -> None:
    """Block while ``<runs>/PAUSE`` exists."""
    while (runs / "PAUSE").exists():
        time.sleep(poll_seconds)


@dataclass(frozen=True, kw_only=True)
class Job:
    """One cell of a grid: ``run`` returns its JSON row; ``needs`` is a file that must exist
    before it can start (e.g. the metrics.json of the run it is initialized from)."""

    key: str
    run: Callable[[], dict[str, Any]]
    needs: Path | None = None


def drain(
    jobs: Sequence[Job],
    *,
    json_path: Path,
    runs: Path,
    budget: dict[str, Any],
    only: Sequence[str] | None = None,
    same_budget: Sequence[str] = (),
    list_only: bool = False,
    parallel: int = 1,
) -> None:
    """Run the jobs not yet finished in ``json_path`` (no row, or a row with a non-zero return
    code) in order, storing each row as it finishes. Holds ``<runs>/LOCK`` while it runs.

    ``only``: run just these keys. ``same_budget``: budget fields that must equal those of the
    JSON's recorded budget (so rows of different budgets never mix in one file). ``list_only``:
    print each job's state (``done``, ``waiting for <file>``, ``to run``) and run nothing.
    ``parallel``: how many jobs run at once. Jobs start in order as a slot frees; a job waits
    while its ``needs`` is missing or lies in the run directory (``<runs>/<key>/``) of a job not
    yet finished, and is skipped once nothing runs that could write it (so, unlike a strictly
    ordered loop, it runs later in the same invocation when an earlier job writes it); ``PAUSE``
    holds the start of new jobs. Which jobs are finished is read once, at the start. A job that
    raises, or an interrupt (Ctrl-C, SIGTERM), stops the grid: every running job's process is
    terminated and only the rows of jobs that had already finished are stored.

    Raises:
        SystemExit: an unknown key in ``only``, a JSON recorded under another budget, or
            a grid already running on ``runs``.
    """
    known = load(json_path).get("budget")
    for name in same_budget:
        if known is not None and known.get(name) != budget.get(name):
            raise SystemExit(f"{json_path} holds cells run with {name}={known.get(name)!r}; this "
                             f"grid has {name}={budget.get(name)!r}: use another --json")  # fmt: skip
    keys = [job.key for job in jobs]
    unknown = sorted(set(only or ()) - set(keys))
    if unknown:
        raise SystemExit(f"unknown cell(s) {unknown}; cells of this grid: {', '.join(keys)}")
    if list_only:
        cells = load(json_path).get("cells", {})
        for job in jobs:
            if only is None or job.key in only:
                print(f"{job.key}: {_state(job, cells.get(job.key))}")
        return
    with grid_lock(runs):
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            _run_jobs(jobs, json_path=json_path, runs=runs, budget=budget, only=only,
                      parallel=max(1, parallel))  # fmt: skip
        finally:
            signal.signal(signal.SIGTERM, previous)


def _run_jobs(
    jobs: Sequence[Job],
    *,
    json_path: Path,
    runs: Path,
    budget: dict[str, Any],
    only: Sequence[str] | None,
    parallel: int,
) -> None:
    """:func:`drain`'s loop: up to ``parallel`` jobs in worker threads, rows stored by this
    (the main) thread as each job finishes."""
    cells = load(json_path).get("cells", {})
    pending = [job for job in jobs if (only is None or job.key in only)
               and cells.get(job.key, {}).get("returncode") != 0]  # fmt: skip
    running: dict[futures.Future[dict[str, Any]], Job] = {}

    def ready(job: Job) -> bool:
        if job.needs is None:
            return True
        unfinished = [*pending, *running.values()]  # their run directories may still change
        return job.needs.is_file() and not any(
            job.needs.is_relative_to(runs / other.key) for other in unfinished if other is not job
        )

    _STOPPING.clear()
    pool = futures.ThreadPoolExecutor(max_workers=parallel)
    try:
        while pending or running:
            startable = [j for j in pending if ready(j)]
            if startable and len(running) < parallel and not (runs / "PAUSE").exists():
                job = startable[0]
                pending.remove(job)
                row = load(json_path).get("cells", {}).get(job.key)
                again = "" if row is None else f" (again: exit code {row.get('returncode')} before)"
                log(f"{job.key}: start{again}")
                running[pool.submit(job.run)] = job
                continue
            if not running:
                if startable:
                    wait_while_paused(runs)
                    continue
                for job in pending:  # nothing runs that could still write what they need
                    log(f"{job.key}: skipped, {job.needs} does not exist yet")
                break
            done, _ = futures.wait(running, timeout=10.0, return_when=futures.FIRST_COMPLETED)
            _store_finished(done, running, json_path=json_path, budget=budget)
    except BaseException:
        _terminate_children()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _store_finished(
    done: set[futures.Future[dict[str, Any]]],
    running: dict[futures.Future[dict[str, Any]], Job],
    *,
    json_path: Path,
    budget: dict[str, Any],
) -> None:
    """Store the rows of the ``done`` jobs (removed from ``running``); a job that raised
    re-raises here, after every other finished row has landed."""
    failed = [f for f in done if f.exception() is not None]
    for future in done:
        job = running.pop(future)
        if future not in failed:
            store(json_path, job.key, future.result(), budget)
    if failed:
        failed[0].result()  # raises


def _terminate_children() -> None:
    """Terminate every running cell's process; one started after this sweep terminates itself
    (:func:`run_logged` checks ``_STOPPING``)."""
    with _CHILDREN_LOCK:
        _STOPPING.set()
        children = list(_CHILDREN)
    for child in children:
        child.terminate()


@contextmanager
def grid_lock(runs: Path) -> Iterator[None]:
    """Hold ``<runs>/LOCK`` (an advisory ``flock``) for the block.

    Raises:
        SystemExit: another process (a running grid) holds it.
    """
    runs.mkdir(parents=True, exist_ok=True)
    with (runs / "LOCK").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"a grid is running on {runs} (it holds {runs / 'LOCK'})") from None
        yield


def _state(job: Job, row: dict[str, Any] | None) -> str:
    if row is not None and row.get("returncode") == 0:
        return "done"
    if job.needs is not None and not job.needs.is_file():
        return f"waiting for {job.needs}"
    return "to run" if row is None else f"to run again (exit code {row.get('returncode')})"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
