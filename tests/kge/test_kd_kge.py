"""KD codes on KGE tables: end to end, distilled from a run (--init-from), export, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from embedlab.cli.main import main
from embedlab.embeddings import KdEmbedding, load_compact
from embedlab.embeddings.compression import kd_table_bits
from embedlab.kge.run import load_run, train_run
from tests.conftest import fast_config
from tests.kge.oracles import (
    assert_metrics_match_brute_force,
    brute_force_ranks,
    random_ranking_mrr,
)

KD = {
    "entity_embedding.kind": "kd",
    "entity_embedding.kd.K": 4,
    "entity_embedding.kd.D": 3,
    "entity_embedding.kd.code_dim": 8,
}


def test_end_to_end_kd_run_reports_its_compression_and_learns(tmp_path: Path) -> None:
    train_run(fast_config("nations", **KD, **{"train.max_epochs": 4}), tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    config, dataset, model = load_run(tmp_path / "run")
    assert isinstance(model.entities, KdEmbedding)
    want = kd_table_bits(num_rows=dataset.num_entities, dim=16, config=config.entity_embedding.kd)
    comp = metrics["compression"]
    assert comp["ratio"] == pytest.approx(want["bits_full"] / want["bits_compressed"])
    # codes 2 bits each, 3 codebooks of 4 x 8 floats, projection 8 x 16 + 16
    assert comp["embedding_bits_compressed"] == 14 * 3 * 2 + 32 * (3 * 4 * 8 + 8 * 16 + 16)
    assert comp["embedding_params_full"] == 14 * 16
    relations = model.relations.weight.numel()
    assert comp["model_bits_full"] == 14 * 16 * 32 + 32 * relations
    # the reported MRR is the brute-force filtered MRR of the saved KD model, and it beats a random
    # ranking of the same filtered candidates (E[1/rank] = H_c / c per query) by 2/N
    assert_metrics_match_brute_force(tmp_path / "run", metrics["test"])
    _, _, candidates = brute_force_ranks(tmp_path / "run", "test")
    margin = 2 / dataset.num_entities
    assert metrics["test"]["mrr"] > random_ranking_mrr(candidates) + margin


def test_distilled_from_a_trained_run(tmp_path: Path) -> None:
    src = tmp_path / "src"
    train_run(fast_config("nations"), src)
    _, _, teacher = load_run(src)
    over = {
        **KD,
        "entity_embedding.kd.guidance": "pdg",
        "entity_embedding.kd.autoencode": True,
        "entity_embedding.kd.distill_epochs": 30,
        "entity_embedding.kd.distill_batch_size": 7,
        "entity_embedding.kd.freeze_codes": True,
        "train.init_from": str(src),
        "train.max_epochs": 0,
    }
    dst = tmp_path / "dst"
    train_run(fast_config("nations", **over), dst)
    _, _, model = load_run(dst)
    assert isinstance(model.entities, KdEmbedding)
    assert torch.equal(model.entities.teacher, teacher.entities.weight)
    assert torch.equal(model.relations.weight, teacher.relations.weight)
    trace = [json.loads(x) for x in (dst / "trace.jsonl").read_text().splitlines()]
    errors = [e["relative_error"] for e in trace if e["event"] == "distill"]
    assert len(errors) == 30 and errors[-1] < errors[0]
    metrics = json.loads((dst / "metrics.json").read_text())
    table = metrics["compression"]["tables"]["entities"]
    assert table["distill_relative_error"] == pytest.approx(errors[-1])


def test_pdg_without_a_teacher_run_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["kge", "train", "--dataset", "nations", "--out", str(tmp_path / "r")]
    sets = ["entity_embedding.kind=kd", "entity_embedding.kd.guidance=pdg"]
    assert main([*args, *[x for s in sets for x in ("--set", s)]]) == 2
    assert "train.init_from" in capsys.readouterr().err


def test_export_codes_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    train_run(fast_config("nations", **KD, **{"train.max_epochs": 1}), run)
    out = tmp_path / "codes.safetensors"
    assert main(["kge", "export-codes", str(run), str(out)]) == 0
    _, _, model = load_run(run)
    compact = load_compact(out)
    with torch.no_grad():
        assert torch.equal(compact.all(), model.entities.all())
        expected = model.entities.all().numpy()
    onnx_out = tmp_path / "entities.onnx"
    assert main(["kge", "export-codes", str(run), str(onnx_out), "--format", "onnx"]) == 0
    session = ort.InferenceSession(str(onnx_out), providers=["CPUExecutionProvider"])
    ids = np.arange(len(expected), dtype=np.int64)[::-1].copy()
    (got,) = session.run(None, {"ids": ids})
    np.testing.assert_allclose(got, expected[ids], rtol=1e-5, atol=1e-5)
    plain = tmp_path / "plain"
    train_run(fast_config("nations", **{"train.max_epochs": 1}), plain)
    assert main(["kge", "export-codes", str(plain), str(out)]) == 2
    assert "not kd" in capsys.readouterr().err


def test_mf_refuses_kd_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from embedlab.config.io import build_typed_config
    from embedlab.errors import UserError
    from embedlab.recsys.config import MfConfig

    with pytest.raises(UserError, match="item_embedding.kind=kd: .*KD codes"):
        build_typed_config(MfConfig, overrides=["item_embedding.kind=kd"])
