"""The GCN of eq. 2 (paper 003; Kipf & Welling): sparse Â products against a dense oracle,
configs, and runs end to end on a tiny Planetoid graph (learning, resume, KD tables, CLI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from embedlab.cli.main import main
from embedlab.config.io import build_typed_config
from embedlab.datasets.planetoid import normalized_adjacency
from embedlab.errors import UserError
from embedlab.gcn.config import GcnConfig
from embedlab.gcn.model import Gcn
from embedlab.gcn.run import train_gcn
from embedlab.training.loop import Loop
from tests.gcn.planetoid_files import write_planetoid

FAST = ["data.valid_size=10", "train.num_threads=1", "train.lr=0.05", "train.max_epochs=30"]
KD = ["model.features=embedding", "model.embedding_dim=8", "node_embedding.kind=kd",
      "node_embedding.kd.K=4", "node_embedding.kd.D=3", "node_embedding.kd.code_dim=4"]  # fmt: skip


def config(data: Path, *over: str) -> GcnConfig:
    return build_typed_config(GcnConfig, overrides=[f"dataset={data}", *FAST, *over])


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_planetoid(tmp_path / "tiny")


@pytest.mark.parametrize("features", ["bag_of_words", "embedding", "both"])
def test_sparse_forward_equals_dense_forward(features: str) -> None:
    """Eq. 2 with ``torch.sparse.mm`` equals the dense formula ``Â ReLU(Â X W0) W1`` in
    float64, in eval mode and in training mode (same dropout masks from the same seed)."""
    n, f = 17, 9
    g = torch.Generator().manual_seed(1)
    edges = torch.randint(0, n, (2, 40), generator=g)
    sparse = normalized_adjacency(edges, n).double()
    dense = sparse.to_dense()
    bow = torch.rand(n, f, generator=g, dtype=torch.float64)
    cfg = build_typed_config(
        GcnConfig, overrides=[f"model.features={features}", "model.embedding_dim=5"]
    )
    torch.manual_seed(0)
    model = Gcn(num_nodes=n, num_features=f, num_classes=4, config=cfg).double()
    inputs = None if features == "embedding" else bow
    model.eval()
    x = model.node_matrix(inputs)
    oracle = dense @ torch.relu(dense @ x @ model.w0.weight.T) @ model.w1.weight.T  # (N, C)
    torch.testing.assert_close(model(sparse, inputs), oracle, rtol=1e-12, atol=1e-12)
    model.train()
    torch.manual_seed(5)
    a = model(sparse, inputs)
    torch.manual_seed(5)
    b = model(dense, inputs)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(a, oracle)  # dropout acted


def test_penalty_is_kipfs_first_layer_l2() -> None:
    cfg = build_typed_config(GcnConfig)
    model = Gcn(num_nodes=5, num_features=3, num_classes=2, config=cfg)
    want = 0.5 * 5e-4 * model.w0.weight.pow(2).sum()
    torch.testing.assert_close(model.penalty(5e-4), want)


def test_config_refuses_what_a_gcn_run_does_not_use() -> None:
    with pytest.raises(UserError, match="model.features=bag_of_words does not use it"):
        build_typed_config(GcnConfig, overrides=["node_embedding.kind=kd"])
    pdg = ["model.features=both", "node_embedding.kind=kd", "node_embedding.kd.guidance=pdg"]
    with pytest.raises(UserError, match="needs a trained run to distill from"):
        build_typed_config(GcnConfig, overrides=pdg)
    with pytest.raises(UserError, match="no table uses it"):
        build_typed_config(GcnConfig, overrides=["model.features=both", "train.init_from=/x"])
    assert build_typed_config(GcnConfig, overrides=[*pdg, "train.init_from=/x"]).train.init_from
    with pytest.raises(UserError, match="model.bogus: unknown key"):
        build_typed_config(GcnConfig, overrides=["model.bogus=1"])


def test_run_learns_and_writes_the_run_directory(tiny: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    metrics = train_gcn(config(tiny), run_dir, progress=False)
    for name in ("config.yaml", "trace.jsonl", "metrics.json", "checkpoints/best.safetensors"):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test"]["accuracy"] == metrics["test"]["accuracy"]
    assert saved["test"]["nodes"] == 18 and saved["valid"]["nodes"] == 10
    assert saved["compression"] is None
    assert saved["dataset"]["nodes"] == 60 and saved["dataset"]["classes"] == 3
    assert metrics["test"]["accuracy"] >= 0.8  # a homophilous graph: far above chance (1/3)
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert all(e["batches"] == 1 and e["rows"] == 12 for e in epochs)  # full batch, 12 labels
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    valid = [e for e in events if e["event"] == "valid"]
    best = min(valid, key=lambda e: e["loss"])
    assert metrics["best_epoch"] == best["epoch"]  # model selection on the valid loss
    assert metrics["valid"]["loss"] == pytest.approx(best["loss"], rel=1e-6)


@pytest.mark.parametrize("extra", [[], KD], ids=["features", "kd-table"])
def test_interrupted_run_resumes_to_the_same_result(
    extra: list[str], tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tiny, "train.early_stopping_patience=0", *extra)
    whole = train_gcn(cfg, tmp_path / "whole", progress=False)
    calls = {"n": 0}
    real = Loop._train_epoch

    def dying(self: Loop, generator: torch.Generator) -> tuple[float, int, int, float]:
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt  # killed during epoch 7: checkpoints/last holds epoch 6
        return real(self, generator)

    monkeypatch.setattr(Loop, "_train_epoch", dying)
    with pytest.raises(KeyboardInterrupt):
        train_gcn(cfg, tmp_path / "cut", progress=False)
    monkeypatch.undo()
    state = json.loads((tmp_path / "cut/checkpoints/last.json").read_text())["state"]
    assert state["loop"]["epoch"] == 6
    resumed = train_gcn(cfg, tmp_path / "cut", progress=False)
    for split in ("valid", "test"):
        assert resumed[split] == whole[split]
    assert resumed["best_epoch"] == whole["best_epoch"]
    a = load_file(str(tmp_path / "whole/checkpoints/last.safetensors"))
    b = load_file(str(tmp_path / "cut/checkpoints/last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert '"event": "resume"' in (tmp_path / "cut/trace.jsonl").read_text()


def test_kd_table_trains_and_reports_its_compression(tiny: Path, tmp_path: Path) -> None:
    metrics = train_gcn(
        config(tiny, *KD, "train.max_epochs=60", "eval.metric=accuracy"),
        tmp_path / "kd",
        progress=False,
    )
    comp = metrics["compression"]
    assert comp is not None and set(comp["tables"]) == {"node_embedding"}
    table = comp["tables"]["node_embedding"]
    assert (table["rows"], table["dim"], table["K"], table["D"]) == (60, 8, 4, 3)
    # 60 x 8 floats vs 60 x 3 two-bit codes + 3 x 4 x 4 code vectors + a 4 -> 8 projection
    assert comp["ratio"] == pytest.approx(32 * 480 / (60 * 3 * 2 + 32 * (48 + 4 * 8 + 8)))
    events = [json.loads(line) for line in (tmp_path / "kd/trace.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in events if e["event"] == "epoch"]
    assert losses[-1] < 0.5 * losses[0]  # the codes, code vectors and W are learned together
    assert metrics["valid"]["accuracy"] > 0.5  # chance is 1/3


PDG = [*KD, "node_embedding.kd.guidance=pdg", "node_embedding.kd.autoencode=true",
       "node_embedding.kd.distill_epochs=30", "node_embedding.kd.distill_lr=0.05"]  # fmt: skip


def test_pdg_distills_the_codes_from_a_trained_node_table(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train.init_from``: the KD table's teacher is the source run's best node table; the
    distillation stage runs before the task (a ``distill`` event per epoch, error falling); a
    killed run resumes without the teacher run (the teacher is in the checkpoint) to the same
    result as an uninterrupted one."""
    from embedlab.gcn.run import load_run

    lookup = ["model.features=embedding", "model.embedding_dim=8", "eval.metric=accuracy"]
    train_gcn(config(tiny, *lookup), tmp_path / "teacher", progress=False)
    _, _, source = load_run(tmp_path / "teacher")
    assert source.node_embedding is not None
    table = source.node_embedding.all().detach()  # (60, 8)
    cfg = config(tiny, *PDG, "train.max_epochs=6", f"train.init_from={tmp_path / 'teacher'}")
    whole = train_gcn(cfg, tmp_path / "kd", progress=False)
    _, _, student = load_run(tmp_path / "kd")
    torch.testing.assert_close(student.node_embedding.teacher, table)  # type: ignore[union-attr]
    trace = [json.loads(line) for line in (tmp_path / "kd/trace.jsonl").read_text().splitlines()]
    errors = [e["relative_error"] for e in trace if e["event"] == "distill"]
    assert len(errors) == 30 and errors[-1] < 0.8 * errors[0]
    report = whole["compression"]["tables"]["node_embedding"]
    assert report["distill_relative_error"] == pytest.approx(errors[-1])
    real, calls = Loop._train_epoch, {"n": 0}

    def dying(self: Loop, generator: torch.Generator) -> tuple[float, int, int, float]:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(self, generator)

    monkeypatch.setattr(Loop, "_train_epoch", dying)
    with pytest.raises(KeyboardInterrupt):
        train_gcn(cfg, tmp_path / "cut", progress=False)
    monkeypatch.undo()
    shutil.rmtree(tmp_path / "teacher")  # resuming reads no teacher run
    resumed = train_gcn(cfg, tmp_path / "cut", progress=False)
    assert resumed["test"] == whole["test"] and resumed["best_epoch"] == whole["best_epoch"]
    # the distillation error of the first process is reported, not dropped
    assert resumed["compression"] == whole["compression"]


def test_pdg_teacher_errors_name_the_run(tiny: Path, tmp_path: Path) -> None:
    train_gcn(config(tiny, "train.max_epochs=2"), tmp_path / "bow", progress=False)
    with pytest.raises(UserError, match="has no node table"):
        train_gcn(config(tiny, *PDG, f"train.init_from={tmp_path / 'bow'}"), tmp_path / "a")
    wide = ["model.features=embedding", "model.embedding_dim=6", "train.max_epochs=2"]
    train_gcn(config(tiny, *wide), tmp_path / "wide", progress=False)
    with pytest.raises(UserError, match="6 wide, model.embedding_dim is 8"):
        train_gcn(config(tiny, *PDG, f"train.init_from={tmp_path / 'wide'}"), tmp_path / "b")
    with pytest.raises(UserError, match="config.yaml|not a .*run|no run"):
        train_gcn(config(tiny, *PDG, f"train.init_from={tmp_path / 'none'}"), tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_train_evaluate_and_user_errors(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    sets = [arg for item in FAST for arg in ("--set", item)]
    args = ["gcn", "train", "--dataset", str(tiny), "--out", str(out), "--no-progress", *sets]
    assert main(args) == 0
    assert "test: accuracy" in capsys.readouterr().out
    assert main(["gcn", "evaluate", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert printed == json.loads((out / "metrics.json").read_text())["test"]
    for argv in (
        [*args, "--set", "model.bogus=1"],
        [*args, "--set", "node_embedding.kind=kd"],
        ["gcn", "train", "--dataset", str(tmp_path / "missing"), "--out", str(tmp_path / "x")],
        ["gcn", "evaluate", str(tmp_path / "nothing")],
        ["gcn", "evaluate", str(out), "--split", "train"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error:") and "Traceback" not in err, argv
        if "model.bogus=1" in argv:
            assert "model.bogus: unknown key" in err
    assert main(["gcn", "--help"]) == 0
    helptext = capsys.readouterr().out
    assert "train" in helptext and "evaluate" in helptext


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "gcn").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_validate_and_state_their_compression(path: Path) -> None:
    from embedlab.embeddings.compression import kd_table_bits

    cfg = build_typed_config(GcnConfig, path=path)
    assert cfg.dataset == path.parent.name
    table = cfg.node_embedding
    assert (table.kind == "kd") == path.stem.endswith("-kd")
    if table.kind == "kd":  # the ratio its comment states
        bits = kd_table_bits(num_rows=2708, dim=cfg.model.embedding_dim, config=table.kd)
        assert f"{bits['ratio']:.1f}x" in path.read_text()
