"""One trial: a normal ``embedlab <task> train`` run in a subprocess, pruned from its trace.

The parent follows the trial's ``trace.jsonl`` while it trains: each ``valid`` event is reported
to Optuna (step = epoch, value = the task's metric); when the pruner says so, the process is
terminated (its run directory stays resumable) and the trial ends as pruned.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.5


class TrialFailed(Exception):
    """The trial's process exited with an error (the message holds the end of its log)."""


class TrialPruned(Exception):
    """The pruner stopped the trial at a validation."""


@dataclass(frozen=True, kw_only=True)
class TrialRun:
    command: Sequence[str]  # the full command line, run in ``cwd``
    run_dir: Path
    metric: str
    log: Path  # stdout and stderr of the process


def _new_valid_events(trace: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete ``valid`` records appended after byte ``offset``; the new offset."""
    if not trace.is_file():
        return [], offset
    with trace.open("rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1  # a torn last line is read next time
    events = []
    for line in data[:end].splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("event") == "valid":
            events.append(record)
    return events, offset + end


def _stop(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_trial(
    run: TrialRun,
    report: Callable[[float, int], bool],
    *,
    cwd: Path | None = None,
) -> float:
    """Run ``run.command`` to the end and return ``metrics.json["valid"][run.metric]``.

    ``report(value, epoch)`` is called for each validation and returns True to prune.

    Raises:
        TrialPruned: ``report`` asked to prune (the process was terminated).
        TrialFailed: the process exited non-zero or wrote no validation metric.
    """
    run.run_dir.mkdir(parents=True, exist_ok=True)
    trace = run.run_dir / "trace.jsonl"
    offset = trace.stat().st_size if trace.is_file() else 0  # a resumed trial: new events only
    with run.log.open("ab") as log:
        proc = subprocess.Popen(list(run.command), stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            while True:
                done = proc.poll() is not None
                events, offset = _new_valid_events(trace, offset)
                for event in events:
                    if run.metric in event and report(
                        float(event[run.metric]), int(event["epoch"])
                    ):
                        _stop(proc)
                        raise TrialPruned(f"pruned at epoch {event['epoch']}")
                if done:
                    break
                time.sleep(POLL_SECONDS)
        except BaseException:
            if proc.poll() is None:  # Ctrl-C or a pruned trial: leave a resumable run directory
                _stop(proc)
            raise
    if proc.returncode != 0:
        tail = run.log.read_text(errors="replace").strip().splitlines()[-5:]
        raise TrialFailed(f"exit {proc.returncode}: " + " | ".join(tail))
    metrics_path = run.run_dir / "metrics.json"
    valid = json.loads(metrics_path.read_text()).get("valid", {}) if metrics_path.is_file() else {}
    if run.metric not in valid:
        raise TrialFailed(f"{metrics_path} has no valid {run.metric}")
    return float(valid[run.metric])
