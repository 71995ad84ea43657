"""benchmarks/cell_queue.py, the loop of the resumable experiment grids: order, skipping finished
and blocked cells, ``--only``, the budget guard, the atomic JSON merge and the process runner."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
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
        def run() -> dict[str, Any]:
            ran.append(key)
            return {"returncode": 0, "value": len(ran)}

        return queue.Job(key=key, run=run, needs=needs)

    out, budget = tmp_path / "grid.json", {"minutes": 10}
    teacher = tmp_path / "teacher" / "metrics.json"
    jobs = [job("a"), job("b", needs=teacher), job("c")]
    queue.drain(jobs, json_path=out, runs=tmp_path, budget=budget)
    assert ran == ["a", "c"]  # b waits for its teacher
    data = json.loads(out.read_text())
    assert data["budget"] == budget
    assert data["cells"] == {"a": {"returncode": 0, "value": 1}, "c": {"returncode": 0, "value": 2}}

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
    jobs = [queue.Job(key="a", run=lambda: {"returncode": 0})]
    with pytest.raises(SystemExit, match="unknown cell"):
        queue.drain(jobs, json_path=out, runs=tmp_path, budget={}, only=["zz"])
    queue.drain(jobs, json_path=out, runs=tmp_path, budget={"minutes": 10, "machine": "m1"})
    with pytest.raises(SystemExit, match="minutes=10"):
        queue.drain(jobs, json_path=out, runs=tmp_path, budget={"minutes": 5},
                    same_budget=("minutes",))  # fmt: skip
    # a field outside same_budget (the machine) may differ
    queue.drain(jobs, json_path=out, runs=tmp_path, budget={"minutes": 10, "machine": "m2"},
                same_budget=("minutes",))  # fmt: skip


def test_run_logged_records_exit_status_log_and_memory(
    queue: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    log = tmp_path / "logs" / "cell.log"
    code = "import sys; x = bytearray(64 * 2**20); print('hello'); sys.exit(3)"
    row = queue.run_logged([sys.executable, "-c", code], log)
    assert row["returncode"] == 3 and "hello" in log.read_text()
    assert row["peak_rss_gib"] >= 64 / 1024 and row["wall_seconds"] >= 0
    assert row["command"].startswith(sys.executable) and len(row["commit"]) >= 40
    assert row["machine"].startswith(f"{os.cpu_count()} cores") and row["ld_preload"] is None
    monkeypatch.setenv("LD_PRELOAD", "")  # an empty value preloads nothing: recorded as None
    assert queue.run_logged([sys.executable, "-c", "pass"], log)["ld_preload"] is None


def test_commit_is_taken_when_the_cell_starts(
    queue: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout updated while a cell trains does not relabel the finished cell."""
    names = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(queue, "git_commit", lambda: next(names))
    row = queue.run_logged([sys.executable, "-c", "pass"], tmp_path / "cell.log")
    assert row["commit"] == "aaaa"


def test_resumed_cell_keeps_the_commit_it_started_on(
    queue: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cell whose run was started by an earlier process (trace: start on c0, resume on c1)
    records ``commit`` c0, the grid's own checkout as ``commit_recorded_by_grid``, and both in
    ``trained_by``; a fresh cell's commit is the grid's."""
    fake = tmp_path / "embedlab"
    fake.write_text(
        "#!" + sys.executable + "\n"
        "import json, pathlib, sys\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1]); out.mkdir(parents=True)\n"
        "events = [json.loads(e) for e in sys.argv[sys.argv.index('--set') + 1][7:].split('|')]\n"
        "(out / 'trace.jsonl').write_text(''.join(json.dumps(e) + '\\n' for e in events))\n"
        "(out / 'metrics.json').write_text('{}')\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(queue, "git_commit", lambda: "c1")

    def cell(key: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        trace = "|".join(json.dumps(e) for e in events)
        return dict(queue.train_cell(
            embedlab=fake, runs=tmp_path / "runs", key=key, task="lm", config=Path("c.yaml"),
            sets=[f"events={trace}"], fields={}, extract=lambda m: {}, quality=lambda r: "",
        ))  # fmt: skip

    started = {"event": "start", "code": {"commit": "c0", "dirty": False}}
    resumed = {"event": "resume", "code": {"commit": "c1", "dirty": False}}
    row = cell("resumed", [started, resumed])
    assert (row["commit"], row["commit_recorded_by_grid"]) == ("c0", "c1")
    assert row["trained_by"] == ["c0", "c1"]
    fresh = cell("fresh", [{"event": "start", "code": {"commit": "c1", "dirty": False}}])
    assert fresh["commit"] == "c1" and "commit_recorded_by_grid" not in fresh
    # the trace's dirty flag and the grid's differ (docs/ edited): same hash, no swap
    dirty = cell("dirty", [{"event": "start", "code": {"commit": "c1", "dirty": True}}])
    assert dirty["commit"] == "c1" and "commit_recorded_by_grid" not in dirty
    # killed before its first checkpoint, restarted from scratch on c1: nothing of c0 is kept
    restarted = cell("restarted", [started, {"event": "start", "code": {"commit": "c1"}}])
    assert restarted["commit"] == "c1" and restarted["trained_by"] == ["c1"]
    assert "commit_recorded_by_grid" not in restarted


def test_trace_commits_lists_each_process_code(queue: Any, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    assert queue.trace_commits(trace) == []
    events = [
        {"event": "start", "code": {"commit": "c1", "dirty": False}},
        {"event": "epoch", "epoch": 1},
        {"event": "resume", "epoch": 1, "code": {"commit": "c1", "dirty": False}},  # same code
        {"event": "resume", "epoch": 1, "code": {"commit": "c2", "dirty": True}},  # other code
        {"event": "resume", "epoch": 1},  # a trace written before resume events carried code
        {"event": "resume", "code": {"commit": None}},  # outside a checkout
    ]
    trace.write_text("\n".join(json.dumps(e) for e in events) + '\n{"event": "sta')
    assert queue.trace_commits(trace) == ["c1", "c2+dirty"]
    # a restart from scratch (a second start): only the processes from there on count
    events.append({"event": "start", "code": {"commit": "c3", "dirty": False}})
    trace.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert queue.trace_commits(trace) == ["c3"]


def test_list_only_prints_states_and_runs_nothing(
    queue: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid.json"
    queue.store(out, "a", {"returncode": 0}, {})
    queue.store(out, "d", {"returncode": -9}, {})
    missing = tmp_path / "teacher.json"

    def never() -> dict[str, Any]:
        raise AssertionError("list_only must not run a job")

    keys = (("a", None), ("b", missing), ("c", None), ("d", None))
    jobs = [queue.Job(key=k, run=never, needs=n) for k, n in keys]
    queue.drain(jobs, json_path=out, runs=tmp_path, budget={}, list_only=True)
    assert capsys.readouterr().out.splitlines() == [
        "a: done", f"b: waiting for {missing}", "c: to run", "d: to run again (exit code -9)"
    ]  # fmt: skip


def test_failed_cells_run_again_and_the_first_budget_stays(queue: Any, tmp_path: Path) -> None:
    out, codes = tmp_path / "grid.json", iter([-9, 0])
    jobs = [queue.Job(key="a", run=lambda: {"returncode": next(codes)})]
    queue.drain(jobs, json_path=out, runs=tmp_path, budget={"machine": "m1"})
    assert json.loads(out.read_text())["cells"]["a"]["returncode"] == -9
    queue.drain(jobs, json_path=out, runs=tmp_path, budget={"machine": "m2"})
    data = json.loads(out.read_text())
    assert data["cells"]["a"]["returncode"] == 0 and data["budget"] == {"machine": "m1"}


def test_a_second_grid_on_the_same_runs_is_refused(queue: Any, tmp_path: Path) -> None:
    seen: list[str] = []

    def nested() -> dict[str, Any]:
        inner = [queue.Job(key="b", run=lambda: {"returncode": 0})]
        with pytest.raises(SystemExit, match="a grid is running"):
            queue.drain(inner, json_path=tmp_path / "other.json", runs=tmp_path, budget={})
        seen.append("refused")
        return {"returncode": 0}

    jobs = [queue.Job(key="a", run=nested)]
    queue.drain(jobs, json_path=tmp_path / "grid.json", runs=tmp_path, budget={})
    assert seen == ["refused"]


def test_parallel_jobs_run_at_once_and_prerequisites_wait(queue: Any, tmp_path: Path) -> None:
    """``parallel=2``: job a finishes only once job b has started (it would wait forever with
    one slot); job s needs the file that job t writes into its run directory (``<runs>/t``), so
    it waits until t has finished, not just until the file exists, and is not skipped."""
    started_b, order = threading.Event(), []
    teacher = tmp_path / "t" / "metrics.json"

    def a() -> dict[str, Any]:
        assert started_b.wait(timeout=30), "b never ran beside a"
        order.append("a")
        return {"returncode": 0}

    def b() -> dict[str, Any]:
        started_b.set()
        order.append("b")
        return {"returncode": 0}

    def t() -> dict[str, Any]:
        teacher.parent.mkdir()
        teacher.write_text("{}")  # in its own run directory, before it has finished
        time.sleep(0.5)
        order.append("t")
        return {"returncode": 0}

    def s() -> dict[str, Any]:
        assert teacher.is_file()
        order.append("s")
        return {"returncode": 0}

    jobs = [queue.Job(key="a", run=a), queue.Job(key="b", run=b), queue.Job(key="t", run=t),
            queue.Job(key="s", run=s, needs=teacher)]  # fmt: skip
    out = tmp_path / "grid.json"
    queue.drain(jobs, json_path=out, runs=tmp_path, budget={}, parallel=2)
    assert set(json.loads(out.read_text())["cells"]) == {"a", "b", "t", "s"}
    assert order.index("t") < order.index("s")


def test_an_interrupt_terminates_every_running_cell(queue: Any, tmp_path: Path) -> None:
    """A job that raises (as SIGTERM does in the main thread) stops the grid: the other job's
    process is terminated, not left training, and no row of either is stored."""
    pid_file = tmp_path / "pid"
    sleeper = [sys.executable, "-c",
               f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
               "time.sleep(120)"]  # fmt: skip

    def long() -> dict[str, Any]:
        return queue.run_logged(sleeper, tmp_path / "long.log")

    def broken() -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while not pid_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise KeyboardInterrupt("signal 15")

    jobs = [queue.Job(key="long", run=long), queue.Job(key="broken", run=broken)]
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        queue.drain(jobs, json_path=tmp_path / "grid.json", runs=tmp_path, budget={}, parallel=2)
    assert time.monotonic() - start < 60  # not the sleeper's 120 s
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (tmp_path / "grid.json").exists()


def test_sigterm_stops_a_cell_that_starts_after_the_sweep(queue: Any, tmp_path: Path) -> None:
    """A real SIGTERM while one job is still preparing its process: the process it starts
    afterwards terminates itself (no training after the interrupt); the grid stops in seconds
    and the row of a job that had finished before is kept."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]

    def late() -> dict[str, Any]:
        time.sleep(1.0)  # still before Popen when the signal arrives
        return queue.run_logged(sleeper, tmp_path / "late.log")

    def quick() -> dict[str, Any]:
        return {"returncode": 0}

    def killer() -> dict[str, Any]:
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)
        return {"returncode": 0}

    jobs = [queue.Job(key="quick", run=quick), queue.Job(key="late", run=late),
            queue.Job(key="killer", run=killer)]  # fmt: skip
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        queue.drain(jobs, json_path=tmp_path / "grid.json", runs=tmp_path, budget={}, parallel=3)
    assert time.monotonic() - start < 60  # not the sleeper's 120 s
    assert "quick" in json.loads((tmp_path / "grid.json").read_text())["cells"]
    assert signal.getsignal(signal.SIGTERM) is not queue._interrupt  # handler restored


def test_a_failing_job_keeps_the_rows_that_finished(queue: Any, tmp_path: Path) -> None:
    def ok() -> dict[str, Any]:
        return {"returncode": 0}

    def bad() -> dict[str, Any]:
        time.sleep(0.2)
        raise ValueError("broken job")

    jobs = [queue.Job(key="bad", run=bad), queue.Job(key="ok", run=ok)]
    with pytest.raises(ValueError, match="broken job"):
        queue.drain(jobs, json_path=tmp_path / "grid.json", runs=tmp_path, budget={}, parallel=2)
    assert list(json.loads((tmp_path / "grid.json").read_text())["cells"]) == ["ok"]
