"""Append-only JSONL trace (``RUN_DIR/trace.jsonl``): one JSON object per event."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class Trace:
    """Appends events; each line gets ``event`` and ``time`` (unix seconds)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": time.time(), **fields}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def read_trace(path: Path) -> list[dict[str, Any]]:
    """All events of a trace file (a torn last line, from a killed run, is skipped)."""
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
