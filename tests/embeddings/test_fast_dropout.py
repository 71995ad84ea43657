"""Dropout from 16-bit uniforms (bf16 autocast): rate, independence, scale, gradient, and the
fp32 path left as it was.

Statistical tolerances: with ``n`` Bernoulli(q) draws the kept fraction has standard deviation
``sqrt(q (1 - q) / n)``; every rate check allows 5 of them (a false alarm about once in 1.7
million runs); the seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import pytest
import torch

from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.fast_dropout import (
    LEVELS,
    Dropout16,
    drop_threshold,
    dropout16,
    masked_dropout16,
    uniform_bits,
    use_dropout16,
)
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.training.device import autocast


def _sigmas(observed: float, q: float, n: int) -> float:
    return abs(observed - q) / math.sqrt(q * (1 - q) / n)


@pytest.mark.parametrize("p", [0.359, 0.311, 0.05, 0.5])
def test_keep_rate_scale_and_expected_value(p: float) -> None:
    torch.manual_seed(0)
    x = torch.rand(2048, 512) + 0.5  # no zeros: out != 0 marks the kept elements
    out = dropout16(x, p)
    keep = out != 0
    p_q = round(p * LEVELS) / LEVELS  # the 16-bit keep probability actually used
    assert abs(p_q - p) <= 2**-17
    n = x.numel()
    assert _sigmas(keep.double().mean().item(), 1 - p_q, n) < 5
    # kept elements are scaled by 1 / (1 - p'), exactly as the kernel computes it
    torch.testing.assert_close(out[keep], x[keep] * (1 / (1 - p_q)), rtol=1e-7, atol=0)
    # expected value: E[keep * scale] = 1, so the mean of out / x is 1 within 5 sigma
    ratio = (out / x).double()
    sd = math.sqrt(p_q / (1 - p_q) / n)  # std of keep * scale is sqrt(p' / (1 - p'))
    assert abs(ratio.mean().item() - 1) < 5 * sd


def test_each_int16_lane_and_neighbours_are_uniform_and_independent() -> None:
    """Four elements share one 64-bit draw: each lane keeps at the same rate (a 63-bit draw
    would leave the top lane short), and neighbours are independent (pairs kept ``(1-p')^2``)."""
    torch.manual_seed(1)
    p = 0.359
    threshold, _ = drop_threshold(p)
    keep = uniform_bits(torch.empty(2**22)) >= threshold  # (n,)
    q = 1 - round(p * LEVELS) / LEVELS
    lanes = keep.view(-1, 4).double()
    for lane in range(4):
        assert _sigmas(lanes[:, lane].mean().item(), q, len(lanes)) < 5
    pairs = (keep[:-1] & keep[1:]).double().mean().item()
    assert _sigmas(pairs, q * q, len(keep) - 1) < 5
    words = (keep[:-4] & keep[4:]).double().mean().item()  # same lane, next 64-bit draw
    assert _sigmas(words, q * q, len(keep) - 4) < 5


def test_reproducible_from_the_seed_and_fresh_per_call() -> None:
    x = torch.ones(300, 1000)
    torch.manual_seed(5)
    a, b = dropout16(x, 0.3), dropout16(x, 0.3)
    torch.manual_seed(5)
    assert torch.equal(dropout16(x, 0.3), a)
    assert not torch.equal(a, b)


def test_gradient_is_the_same_mask_and_scale() -> None:
    torch.manual_seed(2)
    x = (torch.rand(1000, 300) + 0.5).requires_grad_()
    out = dropout16(x, 0.359)
    g = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, g)
    keep = out.detach() != 0
    _, scale = drop_threshold(0.359)
    assert torch.equal(gx, g * (keep.to(torch.float32) * scale))


def test_p_outside_0_1_is_rejected() -> None:
    with pytest.raises(ValueError, match="dropout p=1"):
        drop_threshold(1.0)


def _table(p: float) -> EmbeddingTable:
    config = EmbeddingConfig(dropout=p)
    return EmbeddingTable(num_rows=2000, dim=64, config=config)


def test_embedding_layer_uses_it_only_under_bf16_autocast() -> None:
    """fp32: the ``rand_like`` mask of :meth:`dropout_mask`, bit for bit; bf16 autocast: the
    16-bit masks (a different draw for the same seed); eval mode: the identity."""
    table = _table(0.359)
    table.train()
    torch.manual_seed(3)
    fp32 = table.all()
    torch.manual_seed(3)
    keep = torch.rand_like(table.weight) >= 0.359
    assert torch.equal(fp32, table.weight * (keep.to(torch.float32) * (1.0 / (1.0 - 0.359))))
    torch.manual_seed(3)
    with autocast(torch.device("cpu"), "bf16"):
        low = table.all()
    torch.manual_seed(3)
    assert torch.equal(low, dropout16(table.weight, 0.359))
    assert low.dtype == torch.float32 and not torch.equal(low, fp32)
    table.eval()
    with autocast(torch.device("cpu"), "bf16"):
        assert torch.equal(table.all(), table.weight)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_masked_dropout16_keep_rate_scale_and_gradient_in_half_precision(
    dtype: torch.dtype,
) -> None:
    """The eager half-precision variant: keep rate 1 - p' within 5 sigma, kept elements equal
    ``x * scale`` rounded once to the dtype, and the gradient is the same mask times scale."""
    torch.manual_seed(3)
    p = 0.1
    x = (torch.rand(1024, 1024) + 0.5).to(dtype).requires_grad_()
    out = masked_dropout16(x, p)
    assert out.dtype == dtype
    keep = out.detach() != 0
    p_q, (_, scale) = round(p * LEVELS) / LEVELS, drop_threshold(p)
    assert _sigmas(keep.double().mean().item(), 1 - p_q, x.numel()) < 5
    assert torch.equal(out[keep], (x.detach() * scale)[keep])
    g = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, g)
    assert torch.equal(gx, (g * scale).masked_fill(~keep, 0))


def test_dropout16_module_paths_and_nmt_model_uses_it() -> None:
    """``Dropout16``: identity in eval mode and at p = 0; float32 is ``F.dropout`` itself (same
    seed, same output); bf16 takes the 16-bit path (same seed, same mask as
    ``masked_dropout16``). The NMT Transformer has no plain ``nn.Dropout`` left."""
    from embedlab.nmt.config import NmtConfig
    from embedlab.nmt.model import TransformerNmt

    layer = Dropout16(0.3)
    x = torch.rand(64, 50) + 0.5
    assert layer.eval()(x) is x and Dropout16(0.0).train()(x) is x
    layer.train()
    torch.manual_seed(4)
    ours = layer(x)
    torch.manual_seed(4)
    assert torch.equal(ours, torch.nn.functional.dropout(x, 0.3, True))
    half = x.to(torch.bfloat16)
    torch.manual_seed(4)
    ours = layer(half)
    torch.manual_seed(4)
    assert torch.equal(ours, masked_dropout16(half, 0.3))

    config = NmtConfig.model_validate(
        {"model": {"d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "ffn": 32}}
    )
    model = TransformerNmt(config=config, vocab_size=40)
    kinds = [type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(kinds) == 1 + 3 + 4 and set(kinds) == {Dropout16}  # embedding, encoder, decoder
    assert use_dropout16(model) == 0  # nothing left to replace
    # fp32 inplace: F.dropout's in-place path, the input itself is returned
    inplace = Dropout16(0.3, inplace=True).train()
    y = x.clone()
    assert inplace(y) is y and bool((y == 0).any())
    # under bf16 autocast the layers' dropouts see bf16 activations (so the 16-bit path runs)
    seen: list[torch.dtype] = []
    for module in model.modules():
        if isinstance(module, Dropout16):
            module.register_forward_hook(lambda m, args, out: seen.append(args[0].dtype))
    model.train()
    source = torch.randint(4, 40, (2, 5))
    target = torch.randint(4, 40, (2, 6))
    with autocast(torch.device("cpu"), "bf16"):
        model(source, target)
    assert seen.count(torch.bfloat16) >= 7  # all but the embedding dropout (fp32 sum)
