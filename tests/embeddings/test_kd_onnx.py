"""ONNX round trip of a trained compact KD layer: onnxruntime's vectors equal PyTorch's (1e-5)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from embedlab.embeddings import KdEmbedding, export_kd
from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.kd_onnx import INPUT, OUTPUT, export_onnx
from embedlab.errors import UserError

N, DIM, DP = 23, 6, 5


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trained(*, K: int, D: int, **kd: Any) -> KdEmbedding:
    """A KD layer in evaluation mode whose hard codes use every value range (row 0: all
    ``K - 1``) and whose code embeddings and composition moved off their initialization."""
    torch.manual_seed(K + D)
    config = EmbeddingConfig.model_validate(
        {"kind": "kd", "kd": {"K": K, "D": D, "code_dim": DP, **kd}}
    )
    layer = KdEmbedding(num_rows=N, dim=DIM, config=config)
    codes = torch.randint(0, K, (N, D))
    codes[0] = K - 1
    with torch.no_grad():
        layer.logits.normal_()
        layer.logits.scatter_(2, codes.unsqueeze(2), 50.0)
        for param in [layer.codebook, *layer.compose.parameters()]:
            param.add_(0.3 * torch.randn_like(param))
    return layer.eval()


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


CASES = [
    pytest.param("linear", 16, 8, {}, id="linear-K16-D8"),
    pytest.param("linear", 300, 4, {"shared_codebook": True, "reduce": "mean"}, id="linear-K300"),
    pytest.param("mlp", 32, 4, {}, id="mlp-K32-D4"),
    pytest.param("lstm", 4, 3, {}, id="lstm-K4-D3"),
]


@pytest.mark.parametrize(("composition", "K", "D", "extra"), CASES)
def test_onnx_round_trip(
    composition: str, K: int, D: int, extra: dict[str, Any], tmp_path: Path
) -> None:
    layer = trained(K=K, D=D, composition=composition, **extra)
    compact = export_kd(layer)
    path = export_onnx(compact, tmp_path / "kd.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == [INPUT]
    assert [o.name for o in model.graph.output] == [OUTPUT]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    run = session(path)
    reference = layer.all().detach()  # the trained layer (evaluation mode), (N, d)
    fast = export_kd(layer).fast_linear().all() if composition == "linear" else reference
    gen = np.random.default_rng(K)
    batches = [np.arange(N), np.array([0]), np.array([N - 1, 0, N - 1]), gen.integers(0, N, 97)]
    if composition != "lstm":  # onnxruntime aborts on an empty LSTM batch (documented)
        batches.append(np.zeros(0, dtype=np.int64))
    for ids in batches:
        (got,) = run.run(None, {INPUT: ids.astype(np.int64)})
        assert got.dtype == np.float32 and got.shape == (len(ids), DIM)
        for expected in (reference, fast):
            np.testing.assert_allclose(got, expected.numpy()[ids], rtol=1e-5, atol=1e-5)


def test_onnx_rejects_ids_past_the_table(tmp_path: Path) -> None:
    path = export_onnx(export_kd(trained(K=16, D=8)), tmp_path / "kd.onnx")
    with pytest.raises(Exception, match="(?i)out of|bounds|invalid"):
        session(path).run(None, {INPUT: np.array([0, N], dtype=np.int64)})


def test_export_without_onnx_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(UserError, match=r"embedlab\[onnx\]"):
        export_onnx(export_kd(trained(K=4, D=2)), tmp_path / "kd.onnx")
