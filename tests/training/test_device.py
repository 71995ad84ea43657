"""The ``device`` key and ``train.precision``: resolution, errors, bf16 autocast, and (marked
``device``) the same runs on a CUDA device where one is available."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from embedlab.errors import UserError
from embedlab.kge.config import build_config
from embedlab.kge.run import train_run
from embedlab.losses import sce_tail_linear
from embedlab.training.device import autocast, resolve_device
from tests.conftest import fast_config

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda:0")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "tpu:0"])
def test_device_key_is_validated(bad: str) -> None:
    with pytest.raises(UserError, match="device"):
        build_config(overrides=[f"device={bad}"])


def test_bf16_autocast_of_the_fused_sce_kernel_matches_fp32() -> None:
    """bf16 products with fp32 softmax/accumulation: loss and gradients within bf16 rounding
    (8 mantissa bits: relative error of a product ~ 2^-8 = 0.4%) of the fp32 kernel."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(64, 32, generator=g, requires_grad=True)
    c = torch.randn(500, 32, generator=g, requires_grad=True)
    y = torch.randint(0, 500, (64,), generator=g)
    exact = sce_tail_linear(q, c, y)
    gq, gc = torch.autograd.grad(exact, (q, c))
    with autocast(torch.device("cpu"), "bf16"):
        low = sce_tail_linear(q, c, y)
    assert low.dtype == torch.float32
    lq, lc = torch.autograd.grad(low, (q, c))
    assert low.item() == pytest.approx(exact.item(), rel=1e-2)
    for a, b in ((lq, gq), (lc, gc)):
        assert (a - b).norm() / b.norm() < 2e-2


def test_bf16_training_reaches_the_fp32_result_on_nations(tmp_path: Path) -> None:
    over = {"train.max_epochs": 10, "eval.every": 5}
    fp32 = train_run(fast_config("nations", **over), tmp_path / "fp32")
    bf16 = train_run(fast_config("nations", **over, **{"train.precision": "bf16"}), tmp_path / "b")
    assert bf16["timing"]["precision"] == "bf16"
    assert abs(bf16["test"]["mrr"] - fp32["test"]["mrr"]) < 0.05
    start = json.loads((tmp_path / "b" / "trace.jsonl").read_text().splitlines()[0])
    assert start["precision"] == "bf16" and start["device"] == "cpu"


@pytest.mark.device
@CUDA
def test_kge_on_cuda_matches_cpu(tmp_path: Path) -> None:
    over = {"train.max_epochs": 4, "device": "cpu"}
    cpu = train_run(fast_config("nations", **over), tmp_path / "cpu")
    gpu = train_run(fast_config("nations", **{**over, "device": "cuda"}), tmp_path / "gpu")
    assert gpu["timing"]["device"].startswith("cuda")
    assert gpu["test"]["mrr"] == pytest.approx(cpu["test"]["mrr"], abs=0.05)


@pytest.mark.device
@CUDA
def test_cuda_run_resumes_and_evaluates(tmp_path: Path) -> None:
    cfg = fast_config("nations", **{"train.max_epochs": 2, "device": "cuda"})
    first = train_run(cfg, tmp_path / "run")
    again = train_run(cfg, tmp_path / "run")  # finished: nothing retrained, same metrics
    assert again["test"]["mrr"] == first["test"]["mrr"]


@pytest.mark.device
@CUDA
@pytest.mark.parametrize("task", ["mf", "lm"])
def test_mf_and_lm_train_on_cuda(task: str, tmp_path: Path) -> None:
    from embedlab.cli.main import main
    from tests.conftest import write_ratings, write_tiny_corpus

    if task == "mf":
        data = write_ratings(tmp_path / "ratings")
        argv = ["mf", "train", "--dataset", str(data), "--set", "data.valid_fraction=0.1",
                "--set", "train.max_epochs=4", "--set", "eval.every=2"]  # fmt: skip
    else:
        corpus = write_tiny_corpus(tmp_path / "corpus")
        argv = ["lm", "train", "--dataset", str(corpus), "--set", "model.hidden=8",
                "--set", "model.embedding_dim=8", "--set", "train.batch_size=4",
                "--set", "eval.batch_size=2", "--set", "train.max_epochs=2"]  # fmt: skip
    out = tmp_path / "run"
    assert main([*argv, "--set", "device=cuda", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["timing"]["device"].startswith("cuda")
