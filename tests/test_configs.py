"""Every shipped config validates and matches the paper's table where it says so."""

from pathlib import Path

import pytest

from embedlab.kge.config import build_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs" / "kge").rglob("*.yaml"))


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


TABLE2 = [
    p
    for p in CONFIGS
    if p.parent.name in ("wn18rr", "fb15k-237")
    and p.stem.split("-", 1)[1] in ("sce", "sce_ls", "ns", "sans")
]


def test_every_table_2_cell_has_a_config() -> None:
    cells = {(p.parent.name, p.stem) for p in TABLE2}
    models = ("tucker", "rescal", "complex", "distmult", "transe", "rotate")
    losses = ("sce", "sce_ls", "ns", "sans")
    assert cells == {
        (d, f"{m}-{loss}") for d in ("wn18rr", "fb15k-237") for m in models for loss in losses
    }
    for ds, name in (("fb15k-237", "rescal-sce_bc"), ("fb15k-237", "rescal-ns_freq"),
                     ("wn18rr", "complex-sce_bc"), ("wn18rr", "rotate-ns_freq")):  # fmt: skip
        assert (Path(__file__).parent.parent / "configs/kge" / ds / f"{name}.yaml").is_file()


@pytest.mark.parametrize("path", TABLE2 + [p for p in CONFIGS if "_bc" in p.stem or "_freq" in p.stem],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")  # fmt: skip
def test_config_starts_trains_and_evaluates_on_a_tiny_sample(path: Path, tmp_path: Path) -> None:
    """Each paper config, unchanged but for the data (a 12-entity KG) and one epoch: the rows
    scored in the epoch are those its training type defines, and the reported test metrics are
    the brute-force filtered metrics of the saved model (:mod:`tests.kge.oracles`)."""
    from embedlab.kge.run import train_run
    from tests.conftest import write_kg
    from tests.kge.oracles import assert_metrics_match_brute_force

    data = write_kg(tmp_path / "kg")
    over = [f"dataset={data}", "train.max_epochs=1", "eval.every=1", "train.num_threads=1"]
    config = build_config(path=path, overrides=over)
    metrics = train_run(config, tmp_path / "run")
    train = [line.split("\t") for line in (data / "train.txt").read_text().splitlines()]
    if config.train.type == "KvsAll":  # one row per distinct query, both directions
        rows = len({(h, r) for h, r, _ in train}) + len({(t, r) for _, r, t in train})
    else:  # 1vsAll and negative sampling: a tail and a head query per triple
        rows = 2 * len(train)
    assert metrics["timing"]["epochs"] == 1 and metrics["timing"]["rows"] == rows
    assert_metrics_match_brute_force(tmp_path / "run", metrics["test"])
