"""A run killed with SIGKILL mid-training and resumed reaches the same final metrics as an
uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ARGS = [
    "--dataset",
    "nations",
    "--model",
    "complex",
    "--set",
    "model.dim=16",
    "--set",
    "train.max_epochs=40",
    "--set",
    "train.batch_size=8",
    "--set",
    "train.optimizer=adagrad",
    "--set",
    "train.lr=0.1",
    "--set",
    "train.num_threads=1",
    "--set",
    "eval.every=3",
    "--set",
    "entity_embedding.dropout=0.2",
]


def _train(out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "embedlab.cli.main", "kge", "train", "--out", str(out), *ARGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _checkpoint_epoch(out: Path) -> int:
    try:
        meta = json.loads((out / "checkpoints" / "last.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return int(meta["state"]["loop"]["epoch"])


def test_sigkill_and_resume_matches_uninterrupted(tmp_path: Path) -> None:
    full = tmp_path / "full"
    assert _train(full).wait() == 0
    reference = json.loads((full / "metrics.json").read_text())

    killed = tmp_path / "killed"
    proc = _train(killed)
    deadline = time.time() + 120
    while _checkpoint_epoch(killed) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    epoch_at_kill = _checkpoint_epoch(killed)
    assert 5 <= epoch_at_kill < 40

    resumed = _train(killed)
    assert resumed.wait() == 0, resumed.stderr.read() if resumed.stderr else ""
    result = json.loads((killed / "metrics.json").read_text())
    events = [json.loads(line) for line in (killed / "trace.jsonl").read_text().splitlines()]
    assert any(e["event"] == "resume" and e["epoch"] == epoch_at_kill for e in events)
    # the resuming process names its code, as the first one did (cell_queue.trace_commits)
    starts = [e for e in events if e["event"] in ("start", "resume")]
    assert [e["event"] for e in starts] == ["start", "resume"]
    assert starts[1]["code"] == starts[0]["code"] and "commit" in starts[1]["code"]
    for split in ("valid", "test"):
        for key in ("mrr", "mr", "hits@1", "hits@3", "hits@10"):
            assert result[split][key] == reference[split][key], (split, key)
    assert result["timing"]["best_epoch"] == reference["timing"]["best_epoch"]


def test_rerun_with_other_config_is_refused(tmp_path: Path) -> None:
    from embedlab.cli.main import main

    out = tmp_path / "run"
    base = [
        "kge",
        "train",
        "--out",
        str(out),
        "--dataset",
        "nations",
        "--set",
        "model.dim=8",
        "--set",
        "train.max_epochs=1",
        "--set",
        "train.num_threads=1",
    ]
    assert main(base) == 0
    assert main([*base, "--set", "train.lr=0.5"]) == 2
    assert main([*base, "--set", "train.lr=0.5", "--overwrite"]) == 0


def test_final_history_drops_abandoned_epochs() -> None:
    from embedlab.training.trace import events_of_final_history

    events = [
        {"event": "valid", "epoch": 1},
        {"event": "valid", "epoch": 2},
        {"event": "valid", "epoch": 3},  # lost: the run was killed before checkpointing epoch 3
        {"event": "resume", "epoch": 2},
        {"event": "valid", "epoch": 3},
        {"event": "test", "epoch": 3},
    ]
    kept = events_of_final_history(events, "valid")
    assert [e["epoch"] for e in kept] == [1, 2, 3] and kept[-1] is events[4]
