"""Every shipped LM config validates and trains a few windows on a tiny corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedlab.config import build_typed_config
from embedlab.lm.config import LmConfig
from embedlab.lm.run import train_lm
from tests.lm.test_lm_run import write_tiny_corpus

CONFIGS = sorted((Path(__file__).parent.parent / "configs" / "lm").rglob("*.yaml"))


def test_there_are_lm_configs() -> None:
    names = {(p.parent.name, p.stem) for p in CONFIGS}
    assert {("ptb", "small"), ("ptb", "medium"), ("ptb", "small-kd"), ("ptb", "small-sse-se")} <= (
        names
    )


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_lm_config_validates_and_trains(path: Path, tmp_path: Path) -> None:
    cfg = build_typed_config(LmConfig, path=path)
    assert cfg.dataset == path.parent.name
    if "kd" in path.stem:
        assert cfg.token_embedding.kind == "kd"
    if "sse" in path.stem:
        assert cfg.token_embedding.sse.kind != "none" and cfg.output_embedding.sse.kind != "none"
    corpus = write_tiny_corpus(tmp_path / "corpus", lines=200)
    quick = build_typed_config(
        LmConfig,
        path=path,
        overrides=[
            f"dataset={corpus}",
            "train.max_epochs=1",
            "train.max_batches=2",
            "train.num_threads=1",
        ],
    )
    metrics = train_lm(quick, tmp_path / "run", progress=False)
    assert metrics["timing"]["epochs"] == 1
    assert 1 < metrics["valid"]["perplexity"] < 1e4
    assert (metrics["compression"] is not None) == (cfg.token_embedding.kind == "kd")
