"""Corpus BLEU against a hand-computed value and an independent implementation."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from embedlab.nmt.bleu import corpus_bleu


def independent_bleu(hyps: list[str], refs: list[str]) -> float:
    """Papineni et al.'s corpus BLEU on whitespace tokens, with SacreBLEU's ``exp`` smoothing
    (the k-th zero n-gram precision counts as 1 / (2^k * total))."""
    correct, total = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, ref in zip(hyps, refs, strict=True):
        h, r = hyp.split(), ref.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, 5):
            hn = Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
            rn = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            correct[n - 1] += sum(min(c, rn[g]) for g, c in hn.items())
            total[n - 1] += max(0, len(h) - n + 1)
    logs, zeros = [], 1
    for c, t in zip(correct, total, strict=True):
        if c == 0:
            zeros *= 2
            logs.append(math.log(1 / (zeros * t)))
        else:
            logs.append(math.log(c / t))
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * bp * math.exp(sum(logs) / 4)


def test_hand_computed_sentence() -> None:
    # precisions 5/6, 3/5, 1/4 and 0/3 -> 1/6 (exp smoothing); no brevity penalty
    result = corpus_bleu(["the cat sat on the mat"], ["the cat is on the mat"])
    assert result.score == pytest.approx(100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25)
    assert result.signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")


def test_corpus_with_brevity_penalty_matches_an_independent_implementation() -> None:
    hyps = ["a dog runs on the grass", "two men play", "the woman is reading a book today"]
    refs = ["a dog runs in the park on the grass", "two men play soccer", "the woman reads a book"]
    assert corpus_bleu(hyps, refs).score == pytest.approx(independent_bleu(hyps, refs), rel=1e-9)
    assert corpus_bleu(refs, refs).score == pytest.approx(100.0)
    with pytest.raises(ValueError):
        corpus_bleu(hyps, refs[:2])
