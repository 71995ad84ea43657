"""One training process per run directory (embedlab.training.run_lock): a second ``train`` on a
directory another process holds is refused and deletes nothing; the lock goes with the ``train``
call's end or failure, or with its process (a killed run resumes at once:
tests/training/test_resume.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from embedlab.config.io import build_typed_config
from embedlab.errors import UserError
from embedlab.kge.run import train_run
from embedlab.lm.config import LmConfig
from embedlab.lm.run import train_lm
from embedlab.training.loop import Loop
from embedlab.training.run_dir import prepare_run_dir
from embedlab.training.run_lock import LOCK_NAME, holds_run_dir, release_run_dir
from tests.conftest import fast_config, write_tiny_corpus


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
    # --overwrite empties the directory but keeps its lock file (never let go in between)
    assert prepare_run_dir(run, LmConfig(), overwrite=False)
    (run / "checkpoints").mkdir()
    inode = (run / LOCK_NAME).stat().st_ino
    assert not prepare_run_dir(run, LmConfig(seed=7), overwrite=True)
    assert "seed: 7" in (run / "config.yaml").read_text()
    assert sorted(p.name for p in run.iterdir()) == sorted([LOCK_NAME, "config.yaml"])
    assert (run / LOCK_NAME).stat().st_ino == inode
    assert holds_run_dir(run) and not _free(run)
    release_run_dir(run)


def test_a_directory_deleted_and_made_again_is_locked_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prepare_run_dir(run, LmConfig(), overwrite=False)
    shutil.rmtree(run)  # the lock this process holds is on a file that is gone
    assert not prepare_run_dir(run, LmConfig(), overwrite=False)
    assert holds_run_dir(run) and not _free(run)
    release_run_dir(run)


def test_overwrite_of_an_empty_directory_is_not_confused_by_the_lock(tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    assert not prepare_run_dir(run, LmConfig(), overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == sorted([LOCK_NAME, "config.yaml"])
    release_run_dir(run)


def test_a_refused_overwrite_leaves_no_lock_file(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    with pytest.raises(UserError, match="holds no run"):
        prepare_run_dir(notes, LmConfig(), overwrite=True)
    assert [p.name for p in notes.iterdir()] == ["todo.txt"]  # untouched, no .lock added


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def _train_kge(run: Path) -> None:
    train_run(fast_config("nations", **{"train.max_epochs": 1}), run, progress=False)


def _train_lm(run: Path) -> None:
    corpus = write_tiny_corpus(run.parent / "corpus")
    overrides = [f"dataset={corpus}", "train.max_epochs=1", "model.embedding_dim=8",
                 "model.hidden=8", "train.batch_size=4", "train.bptt=6", "eval.batch_size=2",
                 "train.num_threads=1"]  # fmt: skip
    train_lm(build_typed_config(LmConfig, overrides=overrides), run, progress=False)


@pytest.mark.parametrize("train", [_train_kge, _train_lm], ids=["kge", "lm"])
@pytest.mark.parametrize("where", [None, "__init__", "_train_epoch"])
def test_training_lets_go_when_it_ends_or_fails(
    train: Callable[[Path], None], where: str | None, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Finished, interrupted before the loop runs (after prepare_run_dir), or mid-epoch."""
    run = tmp_path / "run"
    if where is None:
        train(run)
        assert (run / "metrics.json").is_file()
    else:
        monkeypatch.setattr(Loop, where, _interrupt)
        with pytest.raises(KeyboardInterrupt):
            train(run)
        assert (run / "config.yaml").is_file() and not (run / "metrics.json").exists()
    assert not holds_run_dir(run) and _free(run)


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
