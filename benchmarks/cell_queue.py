"""What the long, resumable experiment grids share (benchmarks/table2_grid.py, kd_lm_grid.py,
sse_nmt_grid.py): one process per cell with its log, peak resident memory and wall time; each
finished cell merged into the results JSON at once (atomic rewrite), so an interrupted grid keeps
every finished cell and a re-started one skips them; the commit that produced it; a PAUSE file that
holds the next cell (the running one finishes), so a timing benchmark can have the machine to
itself; and a refusal to mix cells of different budgets in one JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    """One timestamped progress line on stdout (the grids' logs are stdout redirected)."""
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def load(path: Path) -> dict[str, Any]:
    """The results JSON, or ``{}`` before the first cell lands."""
    return json.loads(path.read_text()) if path.is_file() else {}


def store(path: Path, key: str, row: dict[str, Any], budget: dict[str, Any]) -> None:
    """Merge ``row`` as ``cells[key]`` into the JSON at ``path`` (written to a temporary file,
    then renamed over the old one: a kill mid-write never leaves half a file)."""
    data = load(path)
    data["budget"] = budget
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


def run_logged(command: Sequence[str], log_path: Path) -> dict[str, Any]:
    """Run ``command`` from the repository root with stdout and stderr appended to ``log_path``.

    Returns ``returncode``, ``wall_seconds``, ``peak_rss_gib`` (the child's peak resident set,
    from ``wait4``), ``commit``, ``finished`` (UTC, ISO 8601) and ``command`` (as a user would
    type it: ``embedlab ...`` for the console script).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with log_path.open("a") as stream:
        proc = subprocess.Popen(list(command), stdout=stream, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    shown = list(command)
    if Path(shown[0]).name == "embedlab":
        shown[0] = "embedlab"
    return {"returncode": os.waitstatus_to_exitcode(status),
            "wall_seconds": round(time.monotonic() - start, 1),
            "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3), "commit": git_commit(),
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join(shown)}  # fmt: skip


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
) -> None:
    """Run the jobs not yet in ``json_path`` in order, storing each row as it finishes.

    ``only``: run just these keys. ``same_budget``: budget fields that must equal those of the
    JSON's recorded budget (so rows of different budgets never mix in one file).

    Raises:
        SystemExit: an unknown key in ``only``, or a JSON recorded under another budget.
    """
    known = load(json_path).get("budget")
    for name in same_budget:
        if known is not None and known.get(name) != budget.get(name):
            raise SystemExit(f"{json_path} holds cells run with {name}={known.get(name)!r}; this "
                             f"grid has {name}={budget.get(name)!r}: use another --json")  # fmt: skip
    keys = [job.key for job in jobs]
    unknown = sorted(set(only or ()) - set(keys))
    if unknown:
        raise SystemExit(f"unknown cell(s) {unknown}; cells: {', '.join(keys)}")
    for job in jobs:
        if only is not None and job.key not in only:
            continue
        if job.key in load(json_path).get("cells", {}):
            continue
        if job.needs is not None and not job.needs.is_file():
            log(f"{job.key}: skipped, {job.needs} does not exist yet")
            continue
        wait_while_paused(runs)
        log(f"{job.key}: start")
        store(json_path, job.key, job.run(), budget)
