"""Beam search against exhaustive search, beam 1 against greedy, the max-length rule."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn import functional as F

from embedlab.config.io import build_typed_config
from embedlab.nmt.config import NmtConfig
from embedlab.nmt.decode import (
    beam_search,
    greedy,
    length_penalty,
    max_lengths,
    translate_batch,
)
from embedlab.nmt.model import TransformerNmt
from embedlab.nmt.vocab import BOS, EOS, PAD, UNK

V = 6  # <pad> <unk> <s> </s> a b
TOKENS = [UNK, 4, 5]  # what may precede </s>


def tiny_model(seed: int) -> TransformerNmt:
    cfg = build_typed_config(NmtConfig, overrides=[
        "model.d_model=8", "model.heads=2", "model.ffn=16", "model.encoder_layers=1",
        "model.decoder_layers=1", "model.dropout=0.0"])  # fmt: skip
    torch.manual_seed(seed)
    model = TransformerNmt(vocab_size=V, config=cfg)
    with torch.no_grad():
        model.output_bias.normal_(0, 1.0)  # an uneven next-token distribution
        model.target_layer().lookup_all().mul_(8.0)
    return model.eval()


@torch.no_grad()
def sequence_log_prob(model: TransformerNmt, source: torch.Tensor, y: list[int]) -> float:
    """``sum_t log p(y_t | y_<t, x)`` by one teacher-forced pass (full softmax)."""
    target_in = torch.tensor([[BOS, *y[:-1]]])
    logp = F.log_softmax(model(source.unsqueeze(0), target_in)[0].double(), dim=-1)  # (T, V)
    return float(logp[torch.arange(len(y)), torch.tensor(y)].sum().detach())


def exhaustive(model: TransformerNmt, source: torch.Tensor, limit: int, alpha: float) -> list[int]:
    best, best_score = None, float("-inf")
    for n in range(1, limit + 1):
        for body in itertools.product(TOKENS, repeat=n - 1):
            y = [*body, EOS]
            score = sequence_log_prob(model, source, y) / length_penalty(n, alpha)
            if score > best_score:
                best, best_score = list(body), score
    assert best is not None
    return best


SOURCES = [[4, 5, 4, EOS], [5, EOS, PAD, PAD]]  # a padded batch: masking must hold


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_a_wide_beam_is_exhaustive_search(seed: int, alpha: float) -> None:
    model = tiny_model(seed)
    source = torch.tensor(SOURCES)
    hyps = beam_search(model, source, [3, 3], beam=16, alpha=alpha)  # 13 hypotheses each
    for row, hyp in zip(source, hyps, strict=True):
        unpadded = row[row != PAD]
        assert hyp.tokens == exhaustive(model, unpadded, 3, alpha)
        y = [*hyp.tokens, EOS]
        assert hyp.log_prob == pytest.approx(sequence_log_prob(model, unpadded, y), abs=1e-4)
        assert hyp.score == pytest.approx(hyp.log_prob / length_penalty(len(y), alpha))


@pytest.mark.parametrize("seed", range(6))
def test_beam_one_is_greedy(seed: int) -> None:
    model = tiny_model(seed)
    source = torch.tensor(SOURCES)
    limits = [5, 7]
    one = beam_search(model, source, limits, beam=1, alpha=0.6)
    plain = greedy(model, source, limits)
    assert [h.tokens for h in one] == [h.tokens for h in plain]
    for hyp, limit in zip(plain, limits, strict=True):
        assert len(hyp.tokens) + 1 <= limit and BOS not in hyp.tokens and PAD not in hyp.tokens
        # greedy by hand: argmax of the full softmax at each step, </s> forced at the limit
    row = source[0][source[0] != PAD]
    prefix: list[int] = []
    for t in range(1, limits[0] + 1):
        logits = model(row.unsqueeze(0), torch.tensor([[BOS, *prefix]]))[0, -1]
        logits[PAD] = logits[BOS] = float("-inf")
        token = EOS if t == limits[0] else int(logits.argmax())
        if token == EOS:
            break
        prefix.append(token)
    assert plain[0].tokens == prefix


def test_max_length_rule_and_mode_restored() -> None:
    source = torch.tensor([[4, 5, 4, EOS], [5, EOS, PAD, PAD]])
    assert max_lengths(source, 1.0, 50) == [53, 51]
    assert max_lengths(source, 1.5, 2) == [6, 3]
    model = tiny_model(0).train()
    hyps = translate_batch(model, source, beam=2, alpha=0.6, max_len_a=0.0, max_len_b=2)
    assert all(len(h.tokens) <= 1 for h in hyps) and model.training
