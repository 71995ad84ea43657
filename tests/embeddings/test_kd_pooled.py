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
    g = torch.randn(B, DP, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    (grad,) = torch.autograd.grad((out * g).sum(), [book])
    (expected_grad,) = torch.autograd.grad((expected * g).sum(), [book])
    close(grad, expected_grad, tol=1e-12)
    assert code_vector_sum(book, codes[:0]).shape == (0, DP)


def test_code_vector_sum_rejects_codes_outside_k_and_second_order_gradients() -> None:
    _, book = _inputs(False, seed=3)
    codes = torch.zeros(B, D, dtype=torch.long)
    codes[2, 1] = K  # would read position 2's first row
    with pytest.raises(IndexError, match=f"\\[0, {K}\\)"):
        code_vector_sum(book, codes)
    logits, _ = _inputs(False, seed=4)
    out = relaxed_code_sum(torch.softmax(logits, -1), book, straight_through=True)
    (grad,) = torch.autograd.grad(out.pow(2).sum(), [logits], create_graph=True)
    with pytest.raises(RuntimeError):  # once_differentiable: no silently wrong 2nd order
        torch.autograd.grad(grad.pow(2).sum(), [book])


def test_relaxed_code_sum_under_bf16_autocast_stays_near_float32() -> None:
    """bf16 autocast (train.precision: bf16): the STE sum is float32 (embedding_bag is not
    autocast) and the gradient is the float32 one up to the rounding of the soft weights."""
    logits, book = _inputs(False, seed=6)
    logits32 = logits.detach().float().requires_grad_(True)
    book32 = book.detach().float()
    soft = torch.softmax(logits32, -1)
    ref = relaxed_code_sum(soft, book32, straight_through=True)
    (ref_grad,) = torch.autograd.grad(ref.sum(), [logits32])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = relaxed_code_sum(torch.softmax(logits32, -1), book32, straight_through=True)
    (grad,) = torch.autograd.grad(out.float().sum(), [logits32])
    assert out.dtype == torch.float32
    close(out, ref, tol=0.0)
    close(grad, ref_grad, tol=1e-2)


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


def test_frozen_codes_cache_runs_the_encoder_once_and_follows_the_teacher() -> None:
    """Steps with unchanged code sources reuse the codes (the encoder runs once); a new
    teacher row or a changed first encoder layer is seen at the next step."""
    from tests.embeddings.kd_oracles import N, dense_oracle

    teacher = torch.randn(N, 5, generator=torch.Generator().manual_seed(7))
    layer = make(teacher=teacher, freeze_codes=True, guidance="pdg", autoencode=True).train()
    calls = []
    layer.encoder.register_forward_hook(lambda *_: calls.append(1))
    optimizer = torch.optim.Adagrad(layer.parameters(), lr=0.1)
    rows = torch.arange(N)
    for _ in range(3):  # codebook and composition train; the encoder gets no gradient
        optimizer.zero_grad()
        layer.compose_codes(rows).pow(2).sum().backward()
        optimizer.step()
    assert len(calls) == 1
    close(layer.compose_codes(rows), dense_oracle(layer))
    for change in ("teacher", "encoder0"):
        before = layer.codes().clone()
        with torch.no_grad():
            if change == "teacher":
                layer.teacher.copy_(torch.randn(N, 5, generator=torch.Generator().manual_seed(8)))
            else:
                layer.encoder[0].weight.mul_(-3.0)  # type: ignore[index]
        assert not torch.equal(layer.codes(), before), change
        close(layer.compose_codes(rows), dense_oracle(layer))
