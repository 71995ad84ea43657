"""KD compression accounting (paper 003, Lemma 1): parameter counts, code length, bit ratios.

The definition tested is the one in :mod:`embedlab.embeddings.compression`'s docstring: a float
costs 32 bits, a code ``ceil(log2 K)`` bits; training-only state (code logits, encoder, teacher,
online full table) is not counted; other model parameters count 32 bits on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from embedlab.embeddings import KdEmbedding, compression_report, export_kd
from embedlab.embeddings.compression import kd_parameter_count, minimal_code_length
from embedlab.embeddings.config import EmbeddingConfig, KdConfig
from embedlab.embeddings.kd_compose import build_composition, composition_parameter_count
from embedlab.embeddings.lookup import EmbeddingTable


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def kd_layer(rows: int, dim: int, teacher: torch.Tensor | None = None, **kd: Any) -> KdEmbedding:
    torch.manual_seed(0)
    config = EmbeddingConfig.model_validate({"kind": "kd", "kd": kd})
    return KdEmbedding(num_rows=rows, dim=dim, config=config, teacher=teacher)


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


SETTINGS = [
    pytest.param(comp, shared, hidden, reduce, id=f"{comp}-{shared}-{hidden}-{reduce}")
    for comp in ("linear", "mlp", "lstm")
    for shared in (False, True)
    for hidden in (None, 7)
    for reduce in ("sum", "mean")
    if not (comp != "mlp" and hidden is not None)
]


@pytest.mark.parametrize(("composition", "shared", "hidden", "reduce"), SETTINGS)
def test_parameter_count_equals_shipped_numel(
    composition: str, shared: bool, hidden: int | None, reduce: str
) -> None:
    kd: dict[str, Any] = {"K": 5, "D": 3, "code_dim": 4, "composition": composition,
          "shared_codebook": shared, "hidden": hidden, "reduce": reduce}  # fmt: skip
    layer = kd_layer(11, 6, **kd)
    compact = export_kd(layer.eval())
    shipped = compact.codebook.numel() + numel(compact.compose)
    assert kd_parameter_count(config=layer.kd, dim=6) == shipped
    assert composition_parameter_count(layer.kd, 6) == numel(build_composition(layer.kd, 6))
    positions = 1 if shared else 3
    assert compact.codebook.numel() == positions * 5 * 4


def _brute_minimal_D(num_rows: int, K: int) -> int:
    D = 1
    while num_rows > K**D:
        D += 1
    return D


def test_minimal_code_length_brute_force() -> None:
    cases = [(n, k) for k in range(2, 11) for n in range(1, 600)]
    for k in (2, 3, 7, 10, 16, 32, 256, 1000):
        for p in range(1, 13):
            for delta in (-1, 0, 1):
                if k**p + delta >= 1:
                    cases.append((k**p + delta, k))  # exact powers (N = K**3 ...) and neighbours
    for n, k in cases:
        assert minimal_code_length(num_rows=n, K=k) == _brute_minimal_D(n, k), (n, k)
    assert minimal_code_length(num_rows=10**15, K=10) == 15  # log ratio rounds above 15


def test_lemma1_parameters_grow_like_log_n() -> None:
    K, dp, dim = 16, 8, 32
    base = KdConfig(K=K, D=1, code_dim=dp)
    C = composition_parameter_count(base, dim)
    counts = {}
    for exponent in range(3, 7):
        n = 10**exponent
        D = minimal_code_length(num_rows=n, K=K)
        assert math.ceil(exponent * math.log(10) / math.log(K) - 1e-12) == D
        config = base.model_copy(update={"D": D})
        count = kd_parameter_count(config=config, dim=dim)
        assert count == K * D * dp + C  # Lemma 1, per-position codebooks
        assert count - C <= K * dp * (math.log(n) / math.log(K) + 1)  # O(K d' log N / log K)
        counts[n] = count
        shared = kd_parameter_count(config=config.model_copy(update={"shared_codebook": True}),
                                    dim=dim)  # fmt: skip
        assert shared == K * dp + C  # independent of N
    # proportional to ceil(log N / log K): 3, 4, 5, 5 positions for N = 1e3 .. 1e6, K = 16
    assert [(c - C) // (K * dp) for c in counts.values()] == [3, 4, 5, 5]


# -- compression_report ------------------------------------------------------------------
class TinyModel(nn.Module):
    def __init__(self, kd_table: KdEmbedding) -> None:
        super().__init__()
        self.entities = EmbeddingTable(num_rows=13, dim=6, config=EmbeddingConfig())
        self.relations = kd_table
        self.head = nn.Linear(6, 3)


def _hand_report(N: int, d: int, K: int, D: int, dp: int, composition_params: int) -> dict:
    bits_code = math.ceil(math.log2(K))
    full = 32 * N * d
    compressed = N * D * bits_code + 32 * (D * K * dp + composition_params)
    other = 13 * 6 + (6 * 3 + 3)  # the lookup table and the head
    return {
        "ratio": full / compressed,
        "embedding_bits_full": full,
        "embedding_bits_compressed": compressed,
        "model_bits_full": full + 32 * other,
        "model_bits_compressed": compressed + 32 * other,
        "model_ratio": (full + 32 * other) / (compressed + 32 * other),
    }


@pytest.mark.parametrize(
    "kd",
    [
        {},
        {"guidance": "online"},
        {"guidance": "pdg", "autoencode": True},
        {"guidance": "pdg", "composition": "lstm"},
    ],
)
def test_compression_report_hand_computed(kd: dict[str, Any]) -> None:
    N, d, K, D, dp = 40, 6, 5, 3, 4  # K = 5: 3 bits per code
    teacher = torch.randn(N, d) if kd.get("guidance") == "pdg" else None
    table = kd_layer(N, d, teacher=teacher, K=K, D=D, code_dim=dp, **kd)
    model = TinyModel(table)
    report = compression_report(model)
    assert report is not None
    hand = _hand_report(N, d, K, D, dp, numel(table.compose))
    for key, value in hand.items():
        assert report[key] == pytest.approx(value, rel=1e-12), key
    assert report["embedding_params_full"] == N * d
    assert set(report["tables"]) == {"relations"}
    row = report["tables"]["relations"]
    assert row["bits_codes"] == N * D * 3
    assert row["ratio"] == pytest.approx(hand["ratio"], rel=1e-12)


def test_compression_report_two_kd_tables_and_none_without_kd() -> None:
    a = kd_layer(50, 6, K=16, D=2, code_dim=4)
    b = kd_layer(30, 6, K=2, D=6, code_dim=4, shared_codebook=True)
    model = nn.ModuleDict({"a": a, "b": b, "head": nn.Linear(6, 1)})
    report = compression_report(model)
    assert report is not None
    full = 32 * (50 * 6 + 30 * 6)
    compressed = (50 * 2 * 4 + 32 * (2 * 16 * 4 + numel(a.compose))
                  + 30 * 6 * 1 + 32 * (1 * 2 * 4 + numel(b.compose)))  # fmt: skip
    assert report["embedding_bits_full"] == full
    assert report["embedding_bits_compressed"] == compressed
    assert report["ratio"] == pytest.approx(full / compressed, rel=1e-12)
    assert report["model_bits_full"] == full + 32 * 7

    plain = nn.ModuleDict(
        {"t": EmbeddingTable(num_rows=5, dim=2, config=EmbeddingConfig()), "h": nn.Linear(2, 2)}
    )
    assert compression_report(plain) is None
    assert compression_report(nn.Linear(2, 2)) is None
