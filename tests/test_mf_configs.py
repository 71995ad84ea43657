"""Every shipped MF config validates, and (with the shared data) trains one epoch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from embedlab.config.io import build_typed_config
from embedlab.recsys.config import MfConfig
from embedlab.recsys.run import train_mf

CONFIGS = sorted((Path(__file__).parent.parent / "configs" / "mf").rglob("*.yaml"))
DATA = os.environ.get("EMBEDLAB_DATA_DIR")


def test_there_are_mf_configs() -> None:
    names = {(p.parent.name, p.stem) for p in CONFIGS}
    assert {("ml-1m", "sgd-mf"), ("ml-1m", "sse-se"), ("ml-1m", "sse-graph")} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_mf_config_validates_and_trains(path: Path, tmp_path: Path) -> None:
    cfg = build_typed_config(MfConfig, path=path)
    assert cfg.dataset == path.parent.name
    if "sse" in path.stem:
        assert cfg.user_embedding.sse.kind != "none" or cfg.item_embedding.sse.kind != "none"
    if not (DATA and (Path(DATA) / cfg.dataset).is_dir()):
        pytest.skip("needs EMBEDLAB_DATA_DIR for a one-epoch run")
    quick = build_typed_config(
        MfConfig, path=path, overrides=["train.max_epochs=1", "model.dim=4", "eval.every=1"]
    )
    metrics = train_mf(quick, tmp_path / "run", progress=False)
    assert 0.5 < metrics["test"]["rmse"] < 2.0


@pytest.mark.parametrize("table", sorted({p.parent.name for p in CONFIGS}))
def test_configs_of_one_table_share_the_initializer(table: str) -> None:
    """The methods of one results table are compared at the same initializer (a default that
    setting ``sse`` reset once confounded SSE with the initializer)."""
    configs = [build_typed_config(MfConfig, path=p) for p in CONFIGS if p.parent.name == table]
    inits = {(repr(c.user_embedding.init), repr(c.item_embedding.init)) for c in configs}
    assert len(configs) >= 4 and len(inits) == 1, inits


def test_setting_sse_keeps_the_mf_table_defaults() -> None:
    plain = build_typed_config(MfConfig)
    sse = build_typed_config(MfConfig, overrides=["item_embedding.sse.kind=se"])
    assert sse.item_embedding.init == plain.item_embedding.init
    assert (sse.item_embedding.init.name, sse.item_embedding.init.scale) == ("normal", 0.1)
    assert sse.item_embedding.model_copy(update={"sse": plain.item_embedding.sse}) == (
        plain.item_embedding
    )
