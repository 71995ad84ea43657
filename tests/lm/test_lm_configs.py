"""Every shipped LM config validates and trains a few windows on a tiny corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedlab.config.io import build_typed_config
from embedlab.lm.config import LmConfig
from embedlab.lm.run import train_lm
from tests.conftest import write_tiny_corpus

CONFIGS_ROOT = Path(__file__).parents[2] / "configs" / "lm"
CONFIGS = sorted(CONFIGS_ROOT.rglob("*.yaml"))
assert CONFIGS, "no LM configs found"


def test_there_are_lm_configs() -> None:
    names = {(p.parent.name, p.stem) for p in CONFIGS}
    assert {("ptb", "small"), ("ptb", "medium"), ("ptb", "small-kd"), ("ptb", "small-sse-se")} <= (
        names
    )


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_lm_config_validates_and_trains(path: Path, tmp_path: Path) -> None:
    cfg = build_typed_config(LmConfig, path=path)
    assert cfg.dataset == path.relative_to(CONFIGS_ROOT).parts[0]
    if "kd" in path.stem:
        assert cfg.token_embedding.kind == "kd"
    if "sse" in path.stem:
        assert cfg.token_embedding.sse.kind != "none" and cfg.output_embedding.sse.kind != "none"
    corpus = write_tiny_corpus(tmp_path / "corpus", lines=200)
    budget = [f"dataset={corpus}", "train.max_epochs=1", "train.max_batches=2"]
    budget.append("train.num_threads=1")
    overrides = list(budget)
    if cfg.token_embedding.kd.guidance == "pdg":  # needs a trained full-table run
        teacher = build_typed_config(LmConfig, path=CONFIGS_ROOT / "ptb" / "small.yaml")
        teacher = teacher.model_copy(update={"dataset": str(corpus)})
        small = build_typed_config(LmConfig, base=teacher.model_dump(), overrides=budget)
        train_lm(small, tmp_path / "teacher", progress=False)
        overrides.append(f"train.init_from={tmp_path / 'teacher'}")
    quick = build_typed_config(LmConfig, path=path, overrides=overrides)
    metrics = train_lm(quick, tmp_path / "run", progress=False)
    assert metrics["timing"]["epochs"] == 1
    assert 1 < metrics["valid"]["perplexity"] < 1e4
    assert (metrics["compression"] is not None) == (cfg.token_embedding.kind == "kd")
