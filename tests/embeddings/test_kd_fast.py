"""The fast linear KD lookup (kd_fast, CompactKdEmbedding.fast_linear) against a float64 oracle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from embedlab.embeddings import CompactKdEmbedding, save_compact
from embedlab.embeddings.config import KdConfig
from embedlab.embeddings.kd_compose import build_composition
from embedlab.embeddings.kd_fast import bag_lookup, position_offsets, projected_table
from embedlab.errors import UserError

N, DIM, DP = 37, 7, 5


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def compact(*, K: int, D: int, seed: int = 0, **kd: object) -> CompactKdEmbedding:
    """A compact layer with random codes (every row's first code ``K - 1``, row 0 all ``K - 1``),
    code embeddings and a composition moved off its initialization."""
    gen = torch.Generator().manual_seed(seed)
    config = KdConfig.model_validate({"K": K, "D": D, "code_dim": DP, **kd})
    codes = torch.randint(0, K, (N, D), generator=gen)
    codes[:, 0], codes[0] = K - 1, K - 1
    positions = 1 if config.shared_codebook else D
    compose = build_composition(config, DIM).eval()
    with torch.no_grad():
        for param in compose.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
    book = torch.randn(positions, K, DP, generator=gen)
    return CompactKdEmbedding(codes=codes, codebook=book, compose=compose, config=config)


def oracle64(layer: CompactKdEmbedding) -> torch.Tensor:
    """``v_i = P pool_j(W^j[c_i^j]) + b`` in float64, row by row: ``(N, d)``."""
    kd, proj = layer.kd, layer.compose.proj
    assert isinstance(proj, torch.nn.Linear)
    weight, bias = proj.weight.double(), proj.bias.double()
    rows = []
    for i in range(layer.num_rows):
        pooled = torch.zeros(DP, dtype=torch.float64)
        for j in range(kd.D):
            book = layer.codebook[0 if kd.shared_codebook else j]
            pooled += book[int(layer.codes[i, j])].double()
        if kd.reduce == "mean":
            pooled /= kd.D
        rows.append(weight @ pooled + bias)
    return torch.stack(rows)


def assert_close64(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-5) -> None:
    assert actual.dtype == torch.float32 and actual.shape == expected.shape
    error = (actual.double() - expected).abs()
    assert bool(torch.all(error <= tol * (1 + expected.abs()))), float(error.max())


SHAPES = [
    pytest.param(K, D, reduce, shared, id=f"K{K}-D{D}-{reduce}-{'shared' if shared else 'perpos'}")
    for K, D in [(2, 1), (16, 8), (32, 32), (256, 3), (300, 4)]
    for reduce in ("sum", "mean")
    for shared in (False, True)
]


@pytest.mark.parametrize(("K", "D", "reduce", "shared"), SHAPES)
def test_fast_path_equals_float64_oracle(K: int, D: int, reduce: str, shared: bool) -> None:
    layer = compact(K=K, D=D, reduce=reduce, shared_codebook=shared)
    assert layer.codes.dtype == (torch.uint8 if K <= 256 else torch.int16)
    expected = oracle64(layer)  # (N, d)
    exact = layer.all()
    assert_close64(exact, expected)
    assert layer.fast_linear() is layer
    assert layer.projected is not None and layer.projected.shape == (D * K, DIM)
    assert_close64(layer.all(), expected)
    ids = torch.tensor([[0, N - 1, 0], [N - 1, 3, 3]])  # boundary and repeated ids
    assert_close64(layer(ids), expected[ids])
    assert_close64(layer(ids), exact[ids].double())  # fast == exact path up to rounding


def test_bag_lookup_by_definition() -> None:
    """``bag_lookup`` sums row ``offsets[j] + codes[b, j]`` over j, for every code dtype."""
    K, D = 5, 3
    table = torch.randn(D * K, 4)
    codes = torch.tensor([[4, 0, 2], [0, 0, 0], [1, 4, 3]])
    offsets = position_offsets(K, D)
    assert offsets.tolist() == [0, 5, 10] and offsets.dtype == torch.int32
    expected = torch.stack([sum(table[j * K + int(c[j])] for j in range(D)) for c in codes])
    for dtype in (torch.uint8, torch.int16, torch.int32, torch.int64):
        got = bag_lookup(table, codes.to(dtype), offsets)
        assert got.shape == (3, 4)
        assert float((got - expected).abs().max()) <= 1e-6
    assert bag_lookup(table, codes[:0].to(torch.uint8), offsets).shape == (0, 4)


def test_shapes_and_index_dtypes() -> None:
    layer = compact(K=16, D=8)
    exact = layer.all()
    layer.fast_linear()
    for shape in [(), (0,), (1,), (5,), (2, 0), (3, 4), (2, 3, 5)]:
        ids = torch.randint(0, N, shape, generator=torch.Generator().manual_seed(len(shape)))
        for dtype in (torch.int64, torch.int32):
            out = layer(ids.to(dtype))
            assert out.shape == (*shape, DIM) and out.dtype == torch.float32
            assert_close64(out, exact[ids].double())


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("bad", [N, N + 100, -1, -N - 1])
def test_out_of_range_ids_raise(fast: bool, bad: int) -> None:
    layer = compact(K=16, D=8)
    if fast:
        layer.fast_linear()
    with pytest.raises(IndexError, match=rf"ids must be in \[0, {N}\).*got ids from"):
        layer(torch.tensor([0, bad, 3]))


@pytest.mark.parametrize("composition", ["mlp", "lstm"])
def test_nonlinear_keeps_the_exact_path(composition: str) -> None:
    layer = compact(K=4, D=3, composition=composition)
    with pytest.raises(UserError, match="linear"):
        layer.fast_linear()
    with pytest.raises(UserError, match="linear"):
        projected_table(layer.codebook, layer.compose, D=3)
    assert layer.projected is None and layer(torch.tensor([0, N - 1])).shape == (2, DIM)


def test_fast_tables_change_no_state_or_file(tmp_path: Path) -> None:
    """The projected tables are derived state: not in the state dict, not in the file; the
    codes stay uint8 in memory (one byte per code), the file bit-packed."""
    layer = compact(K=16, D=8)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    save_compact(layer, tmp_path / "a.safetensors")
    layer.fast_linear()
    assert set(layer.state_dict()) == set(before)
    assert all(torch.equal(layer.state_dict()[k], v) for k, v in before.items())
    save_compact(layer, tmp_path / "b.safetensors")
    first, second = (load_file(str(tmp_path / f"{n}.safetensors")) for n in "ab")
    assert set(first) == set(second) and all(torch.equal(first[k], second[k]) for k in first)
    assert (tmp_path / "a.safetensors").stat().st_size == (
        tmp_path / "b.safetensors"
    ).stat().st_size
    assert layer.codes.dtype == torch.uint8 and layer.codes.element_size() == 1


def test_load_state_dict_refreshes_the_fast_tables() -> None:
    layer, other = compact(K=16, D=8, seed=1).fast_linear(), compact(K=16, D=8, seed=2)
    layer.load_state_dict(other.state_dict())
    assert_close64(layer.all(), oracle64(other))
