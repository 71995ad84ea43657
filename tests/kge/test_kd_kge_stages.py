"""Staged KD training of a KGE entity table (issue 14, part 2): PDG warm start from a full run,
joint fine-tuning, frozen-code stage; ``--init-from`` a KD run of the same structure hands the
KD table over whole (codes, code embeddings, composition, teacher)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from embedlab.embeddings import KdEmbedding
from embedlab.kge.run import load_run, train_run
from tests.conftest import fast_config

KD = {
    "entity_embedding.kind": "kd",
    "entity_embedding.kd.K": 4,
    "entity_embedding.kd.D": 3,
    "entity_embedding.kd.code_dim": 8,
    "entity_embedding.kd.guidance": "pdg",
    "entity_embedding.kd.autoencode": True,
    "entity_embedding.dropout": 0.0,
}


def _stage(tmp: Path, name: str, source: Path, **over: object) -> Path:
    run = tmp / name
    train_run(fast_config("nations", **{**KD, "train.init_from": str(source), **over}), run)
    return run


def _events(run: Path, kind: str) -> list[dict[str, object]]:
    lines = (run / "trace.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """teacher (full table) -> distill (PDG warm start) -> joint (codes trained) ."""
    tmp = tmp_path_factory.mktemp("stages")
    teacher = tmp / "teacher"
    train_run(fast_config("nations", **{"train.max_epochs": 2}), teacher)
    distill = _stage(
        tmp, "distill", teacher, **{"entity_embedding.kd.distill_epochs": 5, "train.max_epochs": 0}
    )
    joint = _stage(
        tmp,
        "joint",
        distill,
        **{"entity_embedding.kd.freeze_codes": False, "train.max_epochs": 3, "train.lr": 0.5},
    )
    return {"teacher": teacher, "distill": distill, "joint": joint}


def _table(run: Path) -> KdEmbedding:
    _, _, model = load_run(run)
    assert isinstance(model.entities, KdEmbedding)
    return model.entities


def test_joint_stage_starts_from_the_distilled_table_and_moves_the_codes(
    chain: dict[str, Path],
) -> None:
    """The joint stage copies the distilled KD table (teacher = the full run's table), runs no
    distillation with ``distill_epochs=0``, and its task loss changes code assignments."""
    _, _, teacher = load_run(chain["teacher"])
    joint = _table(chain["joint"])
    assert torch.equal(joint.teacher, teacher.entities.weight)
    assert _events(chain["joint"], "distill") == []
    assert len(_events(chain["distill"], "distill")) == 5
    # joint training: codes (encoder), code embeddings and composition move
    distill = _table(chain["distill"])
    assert not torch.equal(joint.codes(), distill.codes())
    assert not torch.equal(joint.codebook, distill.codebook)


def test_init_from_a_same_structure_kd_run_copies_the_whole_table(
    chain: dict[str, Path], tmp_path: Path
) -> None:
    """A frozen stage with 0 epochs: its codes, codebook, composition, encoder and teacher are
    the joint run's (before any training of its own)."""
    run = _stage(
        tmp_path, "frozen0", chain["joint"], **{"entity_embedding.kd.freeze_codes": True,
                                                "train.max_epochs": 0},
    )  # fmt: skip
    src, dst = _table(chain["joint"]), _table(run)
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key
    assert torch.equal(dst.codes(), src.codes())
    assert _events(run, "distill") == []


def test_frozen_stage_keeps_the_codes_and_trains_the_rest(
    chain: dict[str, Path], tmp_path: Path
) -> None:
    """``freeze_codes=true`` after a joint stage: the hard codes at the end equal the joint run's
    final codes (also with an entropy term), while code embeddings and relations are trained."""
    over = {
        "entity_embedding.kd.freeze_codes": True,
        "entity_embedding.kd.entropy_weight": 0.5,
        "train.max_epochs": 3,
        "train.lr": 0.5,
    }
    run = _stage(tmp_path, "frozen", chain["joint"], **over)
    src, dst = _table(chain["joint"]), _table(run)
    assert torch.equal(dst.codes(), src.codes())
    for name, value in src.encoder.state_dict().items():
        assert torch.equal(dst.encoder.state_dict()[name], value), name
    assert not torch.equal(dst.codebook, src.codebook)
    assert json.loads((run / "metrics.json").read_text())["timing"]["epochs"] == 3


def test_another_structure_distills_from_the_composed_source(
    chain: dict[str, Path], tmp_path: Path
) -> None:
    """A KD run of another structure (here D = 2) is not copied: the source's composed table
    becomes the pre-trained table ``u`` (today's PDG behaviour)."""
    over = {"entity_embedding.kd.D": 2, "entity_embedding.kd.distill_epochs": 2}
    run = _stage(tmp_path, "other", chain["joint"], **{**over, "train.max_epochs": 0})
    src = _table(chain["joint"])
    with torch.no_grad():
        composed = src.lookup_all()
    assert torch.allclose(_table(run).teacher, composed)
    assert len(_events(run, "distill")) == 2
