"""Detokenized corpus BLEU with SacreBLEU (Post, WMT 2018): the SSE paper's section 5.2 reports
SacreBLEU; the default signature is ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:...``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from embedlab.nmt.vocab import optional_module


@dataclass(frozen=True)
class BleuResult:
    """``score`` in [0, 100] and SacreBLEU's ``signature`` (how it was computed)."""

    score: float
    signature: str


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> BleuResult:
    """BLEU of detokenized ``hypotheses`` against one detokenized reference each (13a
    tokenization, mixed case, exponential smoothing: SacreBLEU's defaults).

    Raises:
        ValueError: different numbers of hypotheses and references.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    metric = optional_module("sacrebleu.metrics").BLEU()
    result = metric.corpus_score(list(hypotheses), [list(references)])
    return BleuResult(score=float(result.score), signature=str(metric.get_signature()))
