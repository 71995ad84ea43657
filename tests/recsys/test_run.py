"""``embedlab mf train`` end to end: metrics, resume after an interruption, user errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from embedlab.cli.main import main
from embedlab.config.io import build_typed_config
from embedlab.recsys import run as mf_run
from embedlab.recsys.config import MfConfig
from embedlab.training.loop import Loop
from tests.conftest import write_ratings


def _config(data: Path, *over: str) -> MfConfig:
    base = [f"dataset={data}", "model.dim=4", "train.max_epochs=12", "train.batch_size=64",
            "train.lr=0.05", "train.weight_decay=0.01", "eval.every=3", "train.checkpoint_every=2",
            "train.num_threads=1", "data.valid_fraction=0.1"]  # fmt: skip
    return build_typed_config(MfConfig, overrides=base + list(over))


def test_train_beats_the_mean_and_writes_the_run_directory(tmp_path: Path) -> None:
    data = write_ratings(tmp_path / "ratings")
    cfg = _config(data, "user_embedding.sse.kind=se", "user_embedding.sse.p=0.05")
    metrics = mf_run.train_mf(cfg, tmp_path / "run", progress=False)
    train = [line.split("\t") for line in (data / "train.tsv").read_text().splitlines()]
    test = [line.split("\t") for line in (data / "test.tsv").read_text().splitlines()]
    mean = sum(float(r) for *_, r in train) / len(train)
    baseline = (sum((float(r) - mean) ** 2 for *_, r in test) / len(test)) ** 0.5
    assert metrics["test"]["rmse"] < 0.8 * baseline
    assert metrics["test"]["num_ratings"] == len(test)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test"] == pytest.approx(metrics["test"])
    assert {"valid", "timing", "best_epoch", "dataset"} <= saved.keys()
    assert (tmp_path / "run" / "checkpoints" / "best.safetensors").is_file()


@pytest.mark.parametrize("method", ["sgd", "als"])
def test_interrupted_run_resumes_to_the_same_metrics(
    method: str, tmp_path: Path, monkeypatch
) -> None:
    data = write_ratings(tmp_path / "ratings")
    extra = ["user_embedding.sse.kind=se", "user_embedding.sse.p=0.1"] if method == "sgd" else []
    cfg = _config(data, f"train.method={method}", *extra)
    whole = mf_run.train_mf(cfg, tmp_path / "whole", progress=False)

    epochs = {"n": 0}
    real = Loop._train_epoch

    def dying(self: Loop, generator: torch.Generator) -> tuple[float, int, int, float]:
        epochs["n"] += 1
        if epochs["n"] == 8:
            raise KeyboardInterrupt  # killed during epoch 8: last checkpoint holds epoch 6
        return real(self, generator)

    monkeypatch.setattr(Loop, "_train_epoch", dying)
    with pytest.raises(KeyboardInterrupt):
        mf_run.train_mf(cfg, tmp_path / "cut", progress=False)
    monkeypatch.undo()
    resumed = mf_run.train_mf(cfg, tmp_path / "cut", progress=False)
    assert resumed["test"] == whole["test"]
    assert resumed["valid"] == whole["valid"]
    assert '"event": "resume"' in (tmp_path / "cut" / "trace.jsonl").read_text()


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (["--method", "als", "--set", "item_embedding.sse.kind=se"], "need train.method=sgd"),
        (["--set", "train.laplacian.user=0.1"], "need train.method=grals"),
        (["--set", "user_embedding.sse.kind=graph"], "no user graph"),
        (["--set", "train.nope=1"], "unknown key"),
    ],
)
def test_user_errors_exit_2(over: list[str], message: str, tmp_path: Path, capsys) -> None:
    data = write_ratings(tmp_path / "ratings")
    code = main(
        [
            "mf",
            "train",
            "--dataset",
            str(data),
            "--out",
            str(tmp_path / "r"),
            "--no-progress",
            *over,
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(
    not (Path(os.environ.get("EMBEDLAB_DATA_DIR", "/nonexistent")) / "ml-100k").is_dir(),
    reason="needs EMBEDLAB_DATA_DIR with ml-100k",
)
def test_grals_and_sse_graph_run_on_ml100k(tmp_path: Path, capsys) -> None:
    common = ["mf", "train", "--dataset", "ml-100k", "--no-progress", "--set", "model.dim=8",
              "--set", "train.max_epochs=2", "--set", "eval.every=1"]  # fmt: skip
    assert main([*common, "--method", "grals", "--set", "train.laplacian.user=0.1",
                 "--set", "train.laplacian.item=0.1", "--out", str(tmp_path / "g")]) == 0  # fmt: skip
    assert main([*common, "--set", "item_embedding.sse.kind=graph", "--set", "item_embedding.sse.p=0.1",
                 "--out", str(tmp_path / "s")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("test: RMSE") == 2
