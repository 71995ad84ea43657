"""Shared fixtures and explicit row-by-row oracles for the KdEmbedding tests (paper 003)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import torch
from torch import nn

from embedlab.embeddings import KdEmbedding
from embedlab.embeddings.config import EmbeddingConfig

N, DIM, K, D, DP = 9, 5, 4, 3, 6
TAU = 0.7
ALPHA = 1e-3

COMBOS = [
    pytest.param(
        comp,
        shared,
        relax,
        ste,
        id=f"{comp}-{'shared' if shared else 'perpos'}-{relax}-{'ste' if ste else 'soft'}",
    )
    for comp in ("linear", "mlp", "lstm")
    for shared in (False, True)
    for relax in ("softmax", "gumbel")
    for ste in (True, False)
]
COMBO_ARGS = "composition,shared,relaxation,ste"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread (several oversubscribe a shared CPU: tens of times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(
    *,
    rows: int = N,
    dim: int = DIM,
    teacher: torch.Tensor | None = None,
    seed: int = 0,
    emb: dict[str, Any] | None = None,
    **kd: Any,
) -> KdEmbedding:
    """A KD layer with tiny defaults; ``kd`` overrides :class:`KdConfig` keys."""
    torch.manual_seed(seed)
    kd_cfg = {"K": K, "D": D, "code_dim": DP, "temperature": TAU, **kd}
    config = EmbeddingConfig.model_validate({"kind": "kd", "kd": kd_cfg, **(emb or {})})
    return KdEmbedding(num_rows=rows, dim=dim, config=config, teacher=teacher)


def combo(composition: str, shared: bool, relaxation: str, ste: bool, **kd: Any) -> KdEmbedding:
    return make(
        composition=composition,
        shared_codebook=shared,
        relaxation=relaxation,
        straight_through=ste,
        **kd,
    )


def _linear(layer: object, x: torch.Tensor) -> torch.Tensor:
    assert isinstance(layer, nn.Linear)
    return layer.weight @ x + layer.bias


def compose_oracle(layer: KdEmbedding, vectors: list[torch.Tensor]) -> torch.Tensor:
    """``f(e_1, ..., e_D)`` for one row by the explicit formula; ``vectors``: D tensors (d',)."""
    kd, comp = layer.kd, cast(Any, layer.compose)
    if kd.composition in ("linear", "mlp"):
        pooled = torch.zeros(kd.code_dim)
        for e in vectors:
            pooled = pooled + e
        if kd.reduce == "mean":
            pooled = pooled / len(vectors)
        if kd.composition == "linear":
            return _linear(comp.proj, pooled)
        return _linear(comp.out, torch.tanh(_linear(comp.proj, pooled)))
    lstm = comp.lstm  # nn.LSTM (Any: its weights are attributes)
    h = torch.zeros(kd.code_dim)
    c = torch.zeros(kd.code_dim)
    states = []
    for x in vectors:  # torch gate order: input, forget, cell, output
        gates = lstm.weight_ih_l0 @ x + lstm.bias_ih_l0 + lstm.weight_hh_l0 @ h + lstm.bias_hh_l0
        i, f, g, o = gates.chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        states.append(h)
    mean = torch.zeros(kd.code_dim)
    for h in states:
        mean = mean + h
    return _linear(comp.proj, mean / len(states))


def logits_oracle(layer: KdEmbedding) -> torch.Tensor:
    """``pi (N, D, K)``: the free logits, or the encoder of the teacher rows by formula."""
    kd = layer.kd
    if not kd.autoencode:
        return layer.logits.detach().clone()
    first, _, second = cast(nn.Sequential, layer.encoder)
    out = [
        _linear(second, torch.tanh(_linear(first, layer.teacher[i]))).view(kd.D, kd.K)
        for i in range(layer.num_rows)
    ]
    return torch.stack(out).detach()


def book_of(layer: KdEmbedding, j: int) -> torch.Tensor:
    """``W^j`` ``(K, d')``."""
    return layer.codebook[0 if layer.kd.shared_codebook else j]


@torch.no_grad()
def dense_oracle(layer: KdEmbedding) -> torch.Tensor:
    """The hard table ``(N, d)``, row by row: ``f(W^1[argmax pi_i1], ..., W^D[argmax pi_iD])``."""
    logits = logits_oracle(layer)
    table = []
    for i in range(layer.num_rows):
        vectors = []
        for j in range(layer.kd.D):
            k = int(torch.argmax(logits[i, j]))
            vectors.append(book_of(layer, j)[k])
        table.append(compose_oracle(layer, vectors))
    return torch.stack(table)


def close(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-5) -> None:
    """``|actual - expected| <= tol (1 + |expected|)`` elementwise, same shape and dtype
    (``torch.testing.assert_close`` costs ~1 s of lazy imports on its first call)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    error = (actual.detach() - expected.detach()).abs()
    bound = tol * (1 + expected.detach().abs())
    assert bool(torch.all(error <= bound)), f"max error {float(error.max())}"
