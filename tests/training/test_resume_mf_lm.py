"""``embedlab mf train`` and ``embedlab lm train`` killed with SIGKILL once their first checkpoint
is written, then re-run with the same command, end exactly where an uninterrupted run ends: the
same final metrics and the same final checkpoint tensors (as the KGE test in test_resume.py).

Each run is a real subprocess with one thread (``train.num_threads=1``, ``OMP_NUM_THREADS=1``);
the uninterrupted reference runs alongside the run that is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from tests.conftest import write_ratings, write_tiny_corpus


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


MF = _sets("model.dim=4", "train.max_epochs=300", "train.batch_size=64", "train.lr=0.05",
           "train.weight_decay=0.01", "eval.every=3", "train.checkpoint_every=2",
           "train.num_threads=1", "data.valid_fraction=0.1",
           "user_embedding.sse.kind=se", "user_embedding.sse.p=0.1")  # fmt: skip
LM = _sets("train.max_epochs=8", "model.embedding_dim=8", "model.hidden=8",
           "train.batch_size=4", "train.bptt=6", "eval.batch_size=2", "train.decay_after=2",
           "train.num_threads=1", "model.dropout=0.3", "token_embedding.sse.kind=se",
           "token_embedding.sse.p=0.2")  # fmt: skip


def _untimed(metrics: dict) -> dict:
    """The metrics without wall-clock measurements (``seconds``, ``..._per_s``)."""
    return {k: v for k, v in metrics.items() if "seconds" not in k and not k.endswith("_per_s")}


def _start(command: list[str], out: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "embedlab.cli.main", *command, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()


def _kill_after_first_checkpoint(proc: subprocess.Popen, out: Path) -> None:
    checkpoint = out / "checkpoints" / "last.safetensors"
    deadline = time.time() + 60
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.001)
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert checkpoint.exists() and not (out / "metrics.json").exists()


@pytest.mark.parametrize(
    ("kind", "data", "options"),
    [
        pytest.param("mf", write_ratings, ["--no-progress", *MF], id="mf-sgd-sse"),
        pytest.param("lm", write_tiny_corpus, ["--no-progress", *LM], id="lm-dropout-sse"),
    ],
)
def test_sigkill_after_first_checkpoint_and_rerun_matches_uninterrupted(
    kind: str, data, options: list[str], tmp_path: Path
) -> None:
    command = [kind, "train", "--dataset", str(data(tmp_path / "data")), *options]
    full, cut = tmp_path / "full", tmp_path / "cut"
    reference = _start(command, full)
    _kill_after_first_checkpoint(_start(command, cut), cut)
    _finish(_start(command, cut))  # the same command again: resumes from checkpoints/last
    _finish(reference)

    want = json.loads((full / "metrics.json").read_text())
    got = json.loads((cut / "metrics.json").read_text())
    events = [json.loads(line) for line in (cut / "trace.jsonl").read_text().splitlines()]
    resumes = [e for e in events if e["event"] == "resume"]
    assert len(resumes) == 1 and 1 <= resumes[0]["epoch"] < want["timing"]["epochs"]
    for split in ("valid", "test"):
        assert _untimed(got[split]) == _untimed(want[split]), split
    assert got["timing"]["epochs"] == want["timing"]["epochs"]
    a = load_file(str(full / "checkpoints" / "last.safetensors"))
    b = load_file(str(cut / "checkpoints" / "last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key
