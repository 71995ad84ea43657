"""The pooled KD composition path (``code_vector_sum``, ``relaxed_code_sum``): value and
gradients equal the dense ``einsum("bdk,dke->bde")`` form it replaces, for per-position and
shared codebooks, with and without straight-through estimation (paper 003, supplement table 1)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from embedlab.embeddings.kd_compose import (
    code_vector_sum,
    gather_code_vectors,
    relaxed_code_sum,
)
from tests.embeddings.kd_oracles import _one_thread, close, make  # noqa: F401  (autouse fixture)

B, D, K, DP = 7, 5, 6, 4


def _inputs(shared: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, D, K, generator=gen, dtype=torch.float64).requires_grad_(True)
    book = torch.randn(1 if shared else D, K, DP, generator=gen, dtype=torch.float64)
    return logits, book.requires_grad_(True)


def _dense(soft: torch.Tensor, book: torch.Tensor, ste: bool) -> torch.Tensor:
    """The dense form: ``w = one_hot + (soft - soft.detach())`` (STE) or ``soft``, then the
    ``(B, D, d')`` vectors summed over j, written per position."""
    w = F.one_hot(soft.argmax(-1), K).to(soft.dtype) + (soft - soft.detach()) if ste else soft
    full = book.expand(D, -1, -1)
    return sum(w[:, j] @ full[j] for j in range(D))  # type: ignore[return-value]


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("ste", [True, False])
def test_relaxed_code_sum_value_and_gradients_equal_dense_form(shared: bool, ste: bool) -> None:
    logits, book = _inputs(shared, seed=1)
    g = torch.randn(B, DP, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grads = []
    values = []
    for fast in (True, False):
        soft = torch.softmax(logits / 0.7, dim=-1)
        out = (
            relaxed_code_sum(soft, book, straight_through=ste) if fast else _dense(soft, book, ste)
        )
        values.append(out)
        grads.append(torch.autograd.grad((out * g).sum(), [logits, book]))
    close(values[0], values[1], tol=1e-12)
    for fast_grad, dense_grad in zip(grads[0], grads[1], strict=True):
        close(fast_grad, dense_grad, tol=1e-12)
        assert dense_grad.abs().sum() > 0
    if ste:  # the value is the hard codes' sum exactly
        close(values[0], gather_code_vectors(book, logits.argmax(-1)).sum(1), tol=1e-12)


@pytest.mark.parametrize("shared", [False, True])
def test_code_vector_sum_equals_gathered_vectors_summed(shared: bool) -> None:
    _, book = _inputs(shared, seed=3)
    codes = torch.randint(0, K, (B, D), generator=torch.Generator().manual_seed(4))
    out = code_vector_sum(book, codes.to(torch.uint8))
    expected = gather_code_vectors(book, codes).sum(1)
    close(out, expected, tol=1e-12)
    (grad,) = torch.autograd.grad(out.sum(), [book])
    (expected_grad,) = torch.autograd.grad(expected.sum(), [book])
    close(grad, expected_grad, tol=1e-12)


@pytest.mark.parametrize("composition", ["linear", "mlp"])
@pytest.mark.parametrize("ste", [True, False])
def test_layer_mean_reduce_training_rows_equal_dense_composition(
    composition: str, ste: bool
) -> None:
    """The layer's relaxed rows (``reduce: mean``) through ``from_sum`` equal the composition
    applied to the dense ``(B, D, d')`` vectors, in value and in every parameter's gradient."""
    layer = make(composition=composition, reduce="mean", straight_through=ste).train()
    rows = torch.tensor([0, 3, 4, 8])
    g = torch.randn(4, layer.dim, generator=torch.Generator().manual_seed(5))
    out = layer.compose_codes(rows)
    fast = torch.autograd.grad((out * g).sum(), list(layer.parameters()), allow_unused=True)
    weights = layer._relax(layer.code_logits(rows))
    vectors = torch.einsum("bdk,dke->bde", weights, layer._codebook())
    dense_out = layer.compose(vectors)
    dense = torch.autograd.grad((dense_out * g).sum(), list(layer.parameters()), allow_unused=True)
    close(out, dense_out)
    for a, b in zip(fast, dense, strict=True):
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            close(a, b)


@pytest.mark.parametrize("autoencode", [False, True])
def test_frozen_codes_cache_follows_in_place_changes(autoencode: bool) -> None:
    """``freeze_codes``: the training rows equal the row-by-row oracle; after the code logits
    (or the encoder) change in place the cached codes are recomputed, not reused."""
    from tests.embeddings.kd_oracles import N, dense_oracle

    teacher = torch.randn(N, 5, generator=torch.Generator().manual_seed(6))
    kd = {"guidance": "pdg", "autoencode": True} if autoencode else {}
    layer = make(teacher=teacher, freeze_codes=True, **kd).train()
    rows = torch.arange(N)
    close(layer.compose_codes(rows), dense_oracle(layer))
    before = layer.codes().clone()
    source = layer.encoder[2].bias if autoencode else layer.logits  # type: ignore[index]
    with torch.no_grad():  # move every row's code at position 0 to a new value
        if autoencode:
            source.view(layer.kd.D, layer.kd.K)[0] += 100.0 * (
                torch.arange(layer.kd.K) == (before[0, 0] + 1) % layer.kd.K
            )
        else:
            source[:, 0] = source[:, 0].roll(1, dims=-1)
    assert not torch.equal(layer.codes(), before)
    close(layer.compose_codes(rows), dense_oracle(layer))
