"""Compact KD export (paper 003): bit packing, bit-exact export, the safetensors file, fast path."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import save_file

from embedlab.embeddings import (
    CompactKdEmbedding,
    KdEmbedding,
    export_kd,
    load_compact,
    save_compact,
)
from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.kd_compact import code_bits, pack_codes, unpack_codes
from embedlab.errors import UserError

N, DIM, D, DP = 23, 6, 3, 5


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread (several oversubscribe a shared CPU, 30x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(*, rows: int = N, dim: int = DIM, seed: int = 0, **kd: Any) -> KdEmbedding:
    torch.manual_seed(seed)
    kd_cfg = {"K": 4, "D": D, "code_dim": DP, **kd}
    config = EmbeddingConfig.model_validate({"kind": "kd", "kd": kd_cfg})
    return KdEmbedding(num_rows=rows, dim=dim, config=config)


def force_codes(layer: KdEmbedding, codes: torch.Tensor) -> None:
    """Make ``codes (N, D)`` the argmax of the layer's logits."""
    with torch.no_grad():
        layer.logits.normal_()
        layer.logits.scatter_(2, codes.unsqueeze(2), 50.0)


# -- bit packing ---------------------------------------------------------------------------
@pytest.mark.parametrize("bits", range(1, 17))
def test_pack_round_trip_each_width(bits: int) -> None:
    gen = torch.Generator().manual_seed(bits)
    for shape in [(0,), (1,), (7,), (3, 5), (2, 3, 4), (13, 1, 3)]:
        codes = torch.randint(0, 2**bits, shape, generator=gen)
        codes.view(-1)[:1] = 2**bits - 1  # the largest value when non-empty
        packed = pack_codes(codes, bits)
        assert packed.dtype == torch.uint8 and packed.dim() == 1
        assert packed.numel() == math.ceil(codes.numel() * bits / 8)
        assert torch.equal(unpack_codes(packed, bits, shape), codes)


@settings(max_examples=60, deadline=None)
@given(
    bits=st.integers(1, 16),
    shape=st.lists(st.integers(0, 6), min_size=1, max_size=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_pack_round_trip_property(bits: int, shape: list[int], seed: int) -> None:
    codes = torch.randint(0, 2**bits, tuple(shape), generator=torch.Generator().manual_seed(seed))
    packed = pack_codes(codes, bits)
    assert packed.numel() == math.ceil(codes.numel() * bits / 8)
    assert torch.equal(unpack_codes(packed, bits, tuple(shape)), codes)


def test_pack_bit_order_little_endian() -> None:
    packed = pack_codes(torch.tensor([1, 2, 3, 0, 1]), 2)  # 01 10 11 00 | 01 (LSB first)
    assert packed.tolist() == [0b00111001, 0b00000001]


@pytest.mark.parametrize(("K", "bits"), [(2, 1), (3, 2), (4, 2), (5, 3), (16, 4), (17, 5),
                                         (256, 8), (257, 9), (300, 9), (65536, 16)])  # fmt: skip
def test_code_bits(K: int, bits: int) -> None:
    assert code_bits(K) == bits


# -- export: bit for bit -------------------------------------------------------------------
EXPORTS = [
    pytest.param(comp, K, shared, id=f"{comp}-K{K}-{'shared' if shared else 'perpos'}")
    for comp in ("linear", "mlp", "lstm")
    for K in (2, 16, 300)
    for shared in (False, True)
]


@pytest.mark.parametrize(("composition", "K", "shared"), EXPORTS)
def test_export_equals_trained_layer_exactly(composition: str, K: int, shared: bool) -> None:
    layer = make(K=K, composition=composition, shared_codebook=shared)
    codes = torch.randint(0, K, (N, D), generator=torch.Generator().manual_seed(K))
    codes[0] = K - 1  # K = 300: codes above 255 need int16 storage
    force_codes(layer, codes)
    with torch.no_grad():  # "trained": code embeddings and composition moved off their init
        for param in [layer.codebook, *layer.compose.parameters()]:
            param.add_(0.1 * torch.randn_like(param))
    layer.eval()
    compact = export_kd(layer)
    assert isinstance(compact, CompactKdEmbedding)
    expected_dtype = torch.uint8 if K <= 256 else torch.int16
    assert compact.codes.dtype == expected_dtype
    assert torch.equal(compact.codes.long(), layer.codes())
    assert compact.num_rows == N and compact.dim == DIM
    assert torch.equal(compact.all(), layer.all())
    gen = torch.Generator().manual_seed(1)
    for shape in [(), (0,), (11,), (4, 7), (2, 3, 5)]:
        idx = torch.randint(0, N, shape, generator=gen)
        assert torch.equal(compact(idx), layer(idx)), shape
    names = {n for n, _ in compact.state_dict().items()}
    assert not {"logits", "teacher", "full", "temperature"} & names


@pytest.mark.parametrize("composition", ["linear", "mlp", "lstm"])
def test_export_equals_trained_layer_exactly_at_wider_codes(composition: str) -> None:
    """D = 17 positions of d' = 23 (the default fixture's D = 3, d' = 6 sums too few terms for
    a different summation order to show): the compact layer still gives the same bits."""
    layer = make(rows=40, K=16, D=17, code_dim=23, composition=composition)
    with torch.no_grad():
        for param in [layer.codebook, *layer.compose.parameters()]:
            param.add_(0.1 * torch.randn_like(param))
    layer.eval()
    assert torch.equal(export_kd(layer).all(), layer.all())


def test_export_int32_storage_and_autoencoded_layer() -> None:
    big = make(rows=5, K=40000, D=1)
    codes = torch.tensor([[39999], [0], [32768], [17], [39999]])
    force_codes(big, codes)
    compact = export_kd(big.eval())
    assert compact.codes.dtype == torch.int32
    assert torch.equal(compact.codes.long(), codes)
    assert torch.equal(compact.all(), big.all())

    torch.manual_seed(3)
    config = EmbeddingConfig.model_validate(
        {
            "kind": "kd",
            "kd": {"K": 8, "D": D, "code_dim": DP, "guidance": "pdg", "autoencode": True},
        }  # fmt: skip
    )
    enc = KdEmbedding(num_rows=N, dim=DIM, config=config, teacher=torch.randn(N, DIM)).eval()
    assert torch.equal(export_kd(enc).all(), enc.all())


def test_export_is_a_copy() -> None:
    layer = make().eval()
    compact = export_kd(layer)
    before = compact.all().clone()
    with torch.no_grad():
        layer.codebook.add_(1.0)
        for p in layer.compose.parameters():
            p.add_(1.0)
    assert torch.equal(compact.all(), before)


# -- the file --------------------------------------------------------------------------------
@pytest.mark.parametrize(("composition", "K"), [("linear", 2), ("mlp", 16), ("lstm", 300)])
def test_save_load_round_trip_exact(composition: str, K: int, tmp_path: Path) -> None:
    layer = make(K=K, composition=composition, reduce="mean", temperature_final=0.5)
    force_codes(layer, torch.randint(0, K, (N, D), generator=torch.Generator().manual_seed(4)))
    compact = export_kd(layer.eval())
    path = tmp_path / "codes.safetensors"
    save_compact(compact, path)
    loaded = load_compact(path)
    assert loaded.kd == layer.kd
    assert loaded.codes.dtype == compact.codes.dtype
    assert torch.equal(loaded.codes, compact.codes)
    assert torch.equal(loaded.codebook, compact.codebook)
    idx = torch.randint(0, N, (5, 4))
    assert torch.equal(loaded(idx), layer(idx))
    assert torch.equal(loaded.all(), layer.all())


def test_file_smaller_than_fp32_table(tmp_path: Path) -> None:
    rows, dim, K, Dn, dp = 5000, 64, 16, 8, 16
    layer = make(rows=rows, dim=dim, K=K, D=Dn, code_dim=dp).eval()
    path = tmp_path / "codes.safetensors"
    save_compact(export_kd(layer), path)
    size = path.stat().st_size
    packed = math.ceil(rows * Dn * 4 / 8)  # 4 bits per code
    floats = 4 * (Dn * K * dp + dp * dim + dim)
    assert packed + floats <= size <= packed + floats + 4096  # + header and metadata
    assert size * 10 < rows * dim * 4  # fp32 table: 1.28 MB


# -- a dense oracle from the file alone -------------------------------------------------------
def _unpack_little_endian(data: bytes, bits: int, count: int) -> list[int]:
    """``count`` codes of ``bits`` bits from a stream whose bit ``b`` is bit ``b % 8`` of byte
    ``b // 8``; code ``m`` holds stream bits ``m*bits .. (m+1)*bits - 1``, least significant first."""
    codes = []
    for m in range(count):
        value = 0
        for j in range(bits):
            b = m * bits + j
            value |= ((data[b // 8] >> (b % 8)) & 1) << j
        codes.append(value)
    return codes


def _numpy_compose(kd: dict, w: dict[str, np.ndarray], vectors: list[np.ndarray]) -> np.ndarray:
    """``f(e_1, ..., e_D)`` of paper 003 in numpy: pooled (sum or mean) then ``P x + b`` (linear)
    or ``P2 tanh(P1 x + b1) + b2`` (mlp); lstm: the mean of an LSTM's hidden states (gates in
    torch's order i, f, g, o) projected by ``P``."""

    def sigmoid(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))

    if kd["composition"] == "lstm":
        h = c = np.zeros(kd["code_dim"])
        states = []
        for x in vectors:
            gates = w["lstm.weight_ih_l0"] @ x + w["lstm.bias_ih_l0"]
            gates = gates + w["lstm.weight_hh_l0"] @ h + w["lstm.bias_hh_l0"]
            i, f, g, o = np.split(gates, 4)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            states.append(h)
        return w["proj.weight"] @ (sum(states) / len(states)) + w["proj.bias"]
    pooled = sum(vectors)
    if kd["reduce"] == "mean":
        pooled = pooled / len(vectors)
    out = w["proj.weight"] @ pooled + w["proj.bias"]
    if kd["composition"] == "mlp":
        out = w["out.weight"] @ np.tanh(out) + w["out.bias"]
    return out


def numpy_dense_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(codes (N, D), table (N, d))`` read from a KD-code file with safetensors' numpy API and
    composed row by row in float64: ``v_i = f(W^1[c_i1], ..., W^D[c_iD])``."""
    with safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata()
    tensors = load_numpy(str(path))
    kd = json.loads(meta["kd"])
    rows, bits, positions = int(meta["num_rows"]), int(meta["bits"]), kd["D"]
    flat = _unpack_little_endian(tensors["codes"].tobytes(), bits, rows * positions)
    codes = np.array(flat).reshape(rows, positions)
    book = tensors["codebook"].astype(np.float64)  # (D or 1, K, d')
    weights = {
        name.removeprefix("compose."): value.astype(np.float64)
        for name, value in tensors.items()
        if name.startswith("compose.")
    }
    table = []
    for i in range(rows):
        vectors = [book[0 if kd["shared_codebook"] else j][codes[i, j]] for j in range(positions)]
        table.append(_numpy_compose(kd, weights, vectors))
    return codes, np.stack(table)


DENSE = [
    pytest.param(comp, reduce, shared, id=f"{comp}-{reduce}-{'shared' if shared else 'perpos'}")
    for comp in ("linear", "mlp", "lstm")
    for reduce in ("sum", "mean")
    for shared in (False, True)
    if not (comp == "lstm" and reduce == "mean")  # the LSTM always averages its states
]


@pytest.mark.parametrize(("composition", "reduce", "shared"), DENSE)
def test_compact_and_trained_layer_equal_a_dense_numpy_table(
    composition: str, reduce: str, shared: bool, tmp_path: Path
) -> None:
    """Oracle independent of ``gather_code_vectors`` and the composition modules: the file's
    codes (unpacked by hand) are the argmax of the logits, and every row of the compact and
    the trained layer is the numpy composition of its code vectors."""
    K = 5  # 3 bits: codes straddle byte boundaries
    layer = make(K=K, composition=composition, reduce=reduce, shared_codebook=shared)
    force_codes(layer, torch.randint(0, K, (N, D), generator=torch.Generator().manual_seed(7)))
    with torch.no_grad():
        for param in [layer.codebook, *layer.compose.parameters()]:
            param.add_(0.1 * torch.randn_like(param))
    layer.eval()
    path = tmp_path / "codes.safetensors"
    save_compact(export_kd(layer), path)
    codes, table = numpy_dense_table(path)
    assert codes.tolist() == np.argmax(layer.logits.detach().numpy(), axis=2).tolist()
    loaded = load_compact(path)
    for got in (loaded.all(), layer.all().detach(), loaded(torch.arange(N).flip(0)).flip(0)):
        np.testing.assert_allclose(got.double().numpy(), table, rtol=1e-5, atol=1e-6)
    if composition == "linear":
        fast = loaded.fast_linear().all()
        np.testing.assert_allclose(fast.double().numpy(), table, rtol=1e-5, atol=1e-6)


# -- fast path and errors -----------------------------------------------------------------
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("shared", [False, True])
def test_fast_linear_equals_forward(reduce: str, shared: bool) -> None:
    layer = make(K=16, reduce=reduce, shared_codebook=shared).eval()
    compact = export_kd(layer)
    idx = torch.randint(0, N, (6, 9))
    exact = compact(idx)
    assert compact.fast_linear() is compact
    fast = compact(idx)
    assert fast.shape == exact.shape
    assert float((fast - exact).abs().max()) <= 1e-5
    assert float((compact.all() - layer.all().detach()).abs().max()) <= 1e-5


@pytest.mark.parametrize("composition", ["mlp", "lstm"])
def test_fast_linear_rejects_nonlinear(composition: str) -> None:
    compact = export_kd(make(composition=composition).eval())
    with pytest.raises(UserError, match="linear"):
        compact.fast_linear()


def test_load_compact_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        load_compact(tmp_path / "missing.safetensors")
    other = tmp_path / "table.safetensors"
    save_file({"weight": torch.zeros(3, 2)}, str(other), metadata={"format": "pt"})
    with pytest.raises(UserError, match="not an embedlab KD-code file"):
        load_compact(other)
    bare = tmp_path / "bare.safetensors"
    save_file({"weight": torch.zeros(3, 2)}, str(bare))
    with pytest.raises(UserError, match="not an embedlab KD-code file"):
        load_compact(bare)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 this is not safetensors")
    with pytest.raises(UserError):
        load_compact(garbage)
