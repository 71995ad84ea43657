"""Every shipped config validates and matches the paper's table where it says so."""

from pathlib import Path

import pytest

from embedlab.config import build_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_config_validates(path: Path) -> None:
    cfg = build_config(path=path)
    assert path.parent.name == cfg.dataset
    assert path.stem.split("-")[0] == cfg.model.name and cfg.loss.name in path.stem


def test_wn18rr_complex_matches_table_6() -> None:
    cfg = build_config(path=Path(__file__).parent.parent / "configs/kge/wn18rr/complex-sce.yaml")
    assert (cfg.train.batch_size, cfg.model.dim, cfg.train.optimizer, cfg.train.lr) == (
        512,
        128,
        "adagrad",
        0.526,
    )
    assert (cfg.entity_embedding.dropout, cfg.relation_embedding.dropout) == (0.359, 0.311)
    assert cfg.entity_embedding.regularize.weight == 4.52e-6
    assert cfg.entity_embedding.init.name == "uniform" and cfg.entity_embedding.init.scale == 0.281
    assert (cfg.train.lr_decay, cfg.train.lr_patience) == (0.95, 5)
