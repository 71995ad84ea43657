"""benchmarks/cell_queue.py, the loop of the resumable experiment grids: order, skipping finished
and blocked cells, ``--only``, the budget guard, the atomic JSON merge and the process runner."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def queue() -> Iterator[Any]:
    sys.path.insert(0, str(BENCH))
    try:
        import cell_queue

        yield cell_queue
    finally:
        sys.path.remove(str(BENCH))


def test_drain_runs_in_order_skips_finished_and_blocked(queue: Any, tmp_path: Path) -> None:
    ran: list[str] = []

    def job(key: str, needs: Path | None = None) -> Any:
        return queue.Job(key=key, run=lambda: ran.append(key) or {"value": len(ran)}, needs=needs)

    out, budget = tmp_path / "grid.json", {"minutes": 10}
    teacher = tmp_path / "teacher" / "metrics.json"
    jobs = [job("a"), job("b", needs=teacher), job("c")]
    queue.drain(jobs, json_path=out, runs=tmp_path, budget=budget)
    assert ran == ["a", "c"]  # b waits for its teacher
    data = json.loads(out.read_text())
    assert data["budget"] == budget and data["cells"] == {"a": {"value": 1}, "c": {"value": 2}}

    teacher.parent.mkdir()
    teacher.write_text("{}")
    queue.drain(jobs, json_path=out, runs=tmp_path, budget=budget)
    assert ran == ["a", "c", "b"]  # finished cells are not run again
    assert list(json.loads(out.read_text())["cells"]) == ["a", "c", "b"]
    assert not out.with_suffix(".tmp").exists()

    more = [job("d"), job("e")]
    queue.drain(more, json_path=out, runs=tmp_path, budget=budget, only=["e"])
    assert ran[-1] == "e" and "d" not in ran


def test_drain_refuses_unknown_cells_and_other_budgets(queue: Any, tmp_path: Path) -> None:
    out = tmp_path / "grid.json"
    jobs = [queue.Job(key="a", run=lambda: {"x": 1})]
    with pytest.raises(SystemExit, match="unknown cell"):
        queue.drain(jobs, json_path=out, runs=tmp_path, budget={}, only=["zz"])
    queue.drain(jobs, json_path=out, runs=tmp_path, budget={"minutes": 10, "machine": "m1"})
    with pytest.raises(SystemExit, match="minutes=10"):
        queue.drain(jobs, json_path=out, runs=tmp_path, budget={"minutes": 5},
                    same_budget=("minutes",))  # fmt: skip
    # a field outside same_budget (the machine) may differ
    queue.drain(jobs, json_path=out, runs=tmp_path, budget={"minutes": 10, "machine": "m2"},
                same_budget=("minutes",))  # fmt: skip


def test_run_logged_records_exit_status_log_and_memory(queue: Any, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "cell.log"
    code = "import sys; x = bytearray(64 * 2**20); print('hello'); sys.exit(3)"
    row = queue.run_logged([sys.executable, "-c", code], log)
    assert row["returncode"] == 3 and "hello" in log.read_text()
    assert row["peak_rss_gib"] >= 64 / 1024 and row["wall_seconds"] >= 0
    assert row["command"].startswith(sys.executable) and len(row["commit"]) >= 40
