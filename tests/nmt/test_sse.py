"""SSE-SE in the Transformer (paper 001, section 5.2): input ids of both sides are replaced
before the lookup; the prediction targets and the special ids never are."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from embedlab.config.io import build_typed_config
from embedlab.nmt.batching import collate
from embedlab.nmt.config import NmtConfig
from embedlab.nmt.model import TransformerNmt, special_mask
from embedlab.nmt.objective import label_smoothed_nll

V = 50


def model_with_sse(p: float, *, shared: bool = False) -> TransformerNmt:
    target = [] if shared else ["target_embedding.sse.kind=se", f"target_embedding.sse.p={p}"]
    cfg = build_typed_config(NmtConfig, overrides=[
        "model.d_model=8", "model.heads=2", "model.ffn=16", "model.encoder_layers=1",
        "model.decoder_layers=1", "source_embedding.sse.kind=se", f"source_embedding.sse.p={p}",
        f"model.share_embeddings={shared}", *target])  # fmt: skip
    torch.manual_seed(0)
    return TransformerNmt(vocab_size=V, config=cfg)


def record_lookups(model: TransformerNmt) -> list[tuple[str, torch.Tensor]]:
    calls: list[tuple[str, torch.Tensor]] = []
    for name in ("source_embedding", "target_embedding"):
        layer: Any = getattr(model, name)
        if layer is None:
            continue
        real = layer.lookup

        def spy(indices: torch.Tensor, real: Any = real, name: str = name) -> torch.Tensor:
            calls.append((name, indices.clone()))
            return real(indices)

        layer.lookup = spy
    return calls


def batch() -> Any:
    gen = torch.Generator().manual_seed(1)
    src = [torch.randint(4, V, (n,), generator=gen).tolist() for n in (7, 3, 5)]
    tgt = [torch.randint(4, V, (n,), generator=gen).tolist() for n in (4, 6, 2)]
    src[1][0] = 1  # an <unk> in the input
    return collate(src, tgt, [0, 1, 2])


@pytest.mark.parametrize("shared", [False, True])
def test_p1_replaces_every_input_id_but_specials_and_never_targets(shared: bool) -> None:
    model = model_with_sse(1.0, shared=shared).train()
    calls = record_lookups(model)
    b = batch()
    target_out = b.target_out.clone()
    logits = model(b.source, b.target_in)
    assert [c[1].shape for c in calls] == [b.source.shape, b.target_in.shape]  # no output rows
    for (_, looked_up), given in zip(calls, (b.source, b.target_in), strict=True):
        special = special_mask(given)
        assert torch.equal(looked_up[special], given[special])
        assert bool((looked_up[~special] != given[~special]).all())
    assert torch.equal(b.target_out, target_out)
    # the loss is scored against the original targets
    loss, _ = label_smoothed_nll(logits, b.target_out, 0.0)
    ref = torch.nn.functional.cross_entropy(
        logits.reshape(-1, V), target_out.reshape(-1), ignore_index=0, reduction="sum"
    )
    assert float(loss.detach()) == pytest.approx(float(ref.detach()))


def test_no_replacement_in_eval_mode_or_at_p0() -> None:
    for model in (model_with_sse(1.0).eval(), model_with_sse(0.0).train()):
        calls = record_lookups(model)
        b = batch()
        model(b.source, b.target_in)
        assert torch.equal(calls[0][1], b.source) and torch.equal(calls[1][1], b.target_in)


def test_replacement_rate_is_p() -> None:
    """At p = 0.3 about 30 % of the non-special input ids change (binomial, 6 sigma)."""
    model = model_with_sse(0.3).train()
    calls = record_lookups(model)
    b = batch()
    changed = total = 0
    for _ in range(200):
        calls.clear()
        model(b.source, b.target_in)
        for (_, looked_up), given in zip(calls, (b.source, b.target_in), strict=True):
            keep = ~special_mask(given)
            changed += int((looked_up[keep] != given[keep]).sum())
            total += int(keep.sum())
    sigma = (0.3 * 0.7 / total) ** 0.5
    assert abs(changed / total - 0.3) < 6 * sigma
