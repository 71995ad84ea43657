"""One training process per run directory (embedlab.training.run_lock): a second ``train`` on a
directory another process holds is refused and deletes nothing; the lock goes with the run's end,
its failure, or its process (a killed run resumes at once: tests/training/test_resume.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from embedlab.errors import UserError
from embedlab.kge.run import train_run
from embedlab.lm.config import LmConfig
from embedlab.training.loop import Loop
from embedlab.training.run_dir import prepare_run_dir
from embedlab.training.run_lock import LOCK_NAME, holds_run_dir, release_run_dir
from tests.conftest import fast_config


def _other_process_holds(run: Path) -> FileLock:
    """The lock as another process would hold it: flock locks belong to an open file, so a
    second open of the same file in this process conflicts with embedlab's own."""
    lock = FileLock(run / LOCK_NAME, timeout=0, thread_local=False)
    lock.acquire()
    return lock


def _free(run: Path) -> bool:
    lock = FileLock(run / LOCK_NAME, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except TimeoutError:
        return False
    lock.release(force=True)
    return True


def test_a_held_directory_is_refused_and_overwrite_deletes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prepare_run_dir(run, LmConfig(), overwrite=False)
    (run / "trace.jsonl").write_text("{}\n")
    release_run_dir(run)
    other = _other_process_holds(run)
    for overwrite in (False, True):
        with pytest.raises(UserError, match="being trained by another process"):
            prepare_run_dir(run, LmConfig(), overwrite=overwrite)
    assert (run / "config.yaml").is_file() and (run / "trace.jsonl").is_file()
    assert not holds_run_dir(run)
    other.release(force=True)
    assert prepare_run_dir(run, LmConfig(), overwrite=False)  # resumes once it is free
    assert holds_run_dir(run) and not _free(run)
    release_run_dir(run)
    assert _free(run)


def test_same_process_prepares_again_and_errors_let_go(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert not prepare_run_dir(run, LmConfig(), overwrite=False)
    assert prepare_run_dir(run, LmConfig(), overwrite=False)  # this process holds it already
    with pytest.raises(UserError, match="different config"):
        prepare_run_dir(run, LmConfig(seed=7), overwrite=False)
    assert not holds_run_dir(run) and _free(run)  # a refused config leaves no lock behind
    # --overwrite of a directory this process holds locks the new directory
    assert prepare_run_dir(run, LmConfig(), overwrite=False)
    assert not prepare_run_dir(run, LmConfig(seed=7), overwrite=True)
    assert "seed: 7" in (run / "config.yaml").read_text()
    assert holds_run_dir(run) and not _free(run)
    release_run_dir(run)


def test_overwrite_of_an_empty_directory_is_not_confused_by_the_lock(tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    assert not prepare_run_dir(run, LmConfig(), overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == sorted([LOCK_NAME, "config.yaml"])
    release_run_dir(run)


def test_training_lets_go_when_it_ends_or_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = fast_config("nations", **{"train.max_epochs": 1})
    run = tmp_path / "kge"
    train_run(config, run, progress=False)
    assert (run / "metrics.json").is_file()
    assert not holds_run_dir(run) and _free(run)

    def fail(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Loop, "_train_epoch", fail)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "stopped", progress=False)
    assert (tmp_path / "stopped" / "config.yaml").is_file()
    assert not holds_run_dir(tmp_path / "stopped") and _free(tmp_path / "stopped")


def test_cli_refuses_a_second_train_without_traceback(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "embedlab.cli.main", "kge", "train", "--out", str(run),
           "--dataset", "nations", "--no-progress", "--set", "train.max_epochs=1",
           "--set", "model.dim=8", "--set", "train.num_threads=1"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run.mkdir()
    other = _other_process_holds(run)
    refused = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert refused.returncode == 2, refused.stderr
    assert "being trained by another process" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # nothing written
    other.release(force=True)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert (run / "metrics.json").is_file() and _free(run)
