"""embedlab.training.run_dir: the helpers every task's ``train`` shares to make a config's paths
absolute and to tell a fresh run from a resumed one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from embedlab.config.io import dump_config
from embedlab.errors import UserError
from embedlab.lm.config import LmConfig
from embedlab.training.checkpoint import save_checkpoint
from embedlab.training.run_dir import (
    RunPaths,
    prepare_run_dir,
    will_resume,
    with_absolute_paths,
)
from embedlab.training.trace import Trace, read_trace


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "corpus").mkdir()
    monkeypatch.chdir(tmp_path)
    config = LmConfig.model_validate({"dataset": "corpus", "train": {"init_from": "teacher"}})
    out = with_absolute_paths(config)
    assert out.dataset == str(tmp_path / "corpus")
    assert out.train.init_from == str(tmp_path / "teacher")  # need not exist yet
    assert config.dataset == "corpus"  # the input is not modified
    home = with_absolute_paths(LmConfig.model_validate({"train": {"init_from": "~/run"}}))
    assert home.train.init_from == os.path.expanduser("~/run")


def test_registry_names_and_missing_directories_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ptb").mkdir()  # a directory named like a registry dataset is still the dataset
    config = LmConfig.model_validate({"dataset": "ptb"})
    assert with_absolute_paths(config) is config
    missing = LmConfig.model_validate({"dataset": "no-such-dir"})
    assert with_absolute_paths(missing).dataset == "no-such-dir"  # the loader names it


def test_will_resume_needs_config_and_last_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert not will_resume(run, overwrite=False)
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\n")
    assert not will_resume(run, overwrite=False)  # killed before its first checkpoint
    save_checkpoint(RunPaths(run).last, model=torch.nn.Linear(1, 1))
    assert will_resume(run, overwrite=False)
    assert not will_resume(run, overwrite=True)
    (run / "config.yaml").unlink()
    assert not will_resume(run, overwrite=False)


def test_a_run_saved_with_a_relative_init_from_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run directories written before ``train.init_from`` was made absolute (KGE) still resume
    from the directory they were started in; another teacher is still a different config."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    old = LmConfig.model_validate({"train": {"init_from": "teacher"}})
    (run / "config.yaml").write_text(dump_config(old))
    assert prepare_run_dir(run, with_absolute_paths(old), overwrite=False)
    other = LmConfig.model_validate({"train": {"init_from": str(tmp_path / "other")}})
    with pytest.raises(UserError, match="train.init_from"):
        prepare_run_dir(run, other, overwrite=False)


def test_read_trace_missing_ok(tmp_path: Path) -> None:
    assert read_trace(tmp_path / "trace.jsonl", missing_ok=True) == []
    with pytest.raises(FileNotFoundError):
        read_trace(tmp_path / "trace.jsonl")
    (tmp_path / "trace.jsonl").write_text('{"event": "start"}\n{"event": "ep')  # torn last line
    assert read_trace(tmp_path / "trace.jsonl", missing_ok=True) == [{"event": "start"}]


def test_trace_read_returns_what_it_wrote(tmp_path: Path) -> None:
    trace = Trace(tmp_path / "trace.jsonl")
    assert trace.read() == []  # no file yet
    trace.write("start", epoch=0)
    trace.write("distill", table="entities", relative_error=0.5)
    events = trace.read()
    assert [(e["event"], e.get("relative_error")) for e in events] == [
        ("start", None),
        ("distill", 0.5),
    ]
