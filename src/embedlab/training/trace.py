"""Append-only JSONL trace (``RUN_DIR/trace.jsonl``): one JSON object per event."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any


class Trace:
    """Appends events; each line gets ``event`` and ``time`` (unix seconds).

    ``enabled`` False (ranks other than 0 of a data-parallel job) writes nothing. Each of
    ``listeners`` is called with every written record after it is on disk (experiment trackers:
    :mod:`embedlab.training.trackers`).
    """

    def __init__(
        self,
        path: Path,
        *,
        enabled: bool = True,
        listeners: Sequence[Callable[[dict[str, Any]], None]] = (),
    ) -> None:
        self.path, self.enabled, self.listeners = path, enabled, list(listeners)

    def write(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "time": time.time(), **fields}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        for listener in self.listeners:
            listener(record)

    def read(self) -> list[dict[str, Any]]:
        """Every event of this trace file so far (:func:`read_trace`; none when it does not
        exist yet)."""
        return read_trace(self.path, missing_ok=True)


def read_trace(path: Path, *, missing_ok: bool = False) -> list[dict[str, Any]]:
    """All events of a trace file (a torn last line, from a killed run, is skipped);
    ``missing_ok``: no events when the file does not exist (else FileNotFoundError)."""
    if missing_ok and not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def events_of_final_history(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Events of one ``kind`` along the history that led to the final state.

    A resumed run re-does the epochs after its last checkpoint, so the trace holds their first,
    abandoned attempt too: at each ``resume`` event (epoch E) the events after epoch E are
    dropped.
    """
    kept: list[dict[str, Any]] = []
    for event in events:
        if event["event"] == "resume":
            kept = [e for e in kept if e.get("epoch", 0) <= event["epoch"]]
        elif event["event"] == kind:
            kept.append(event)
    return kept


def code_version() -> dict[str, Any]:
    """What code a run used: the package version and, in a git checkout, the commit and whether
    the working tree had uncommitted changes (``None`` where git or a checkout is missing)."""
    try:
        version: str | None = metadata.version("embedlab")
    except metadata.PackageNotFoundError:
        version = None
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"version": version, "commit": commit, "dirty": bool(status) if commit else None}
