"""Valid/test metrics of an NMT model: token NLL (teacher forcing) and detokenized BLEU of its
translations."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from embedlab.nmt.batching import pad, source_batches
from embedlab.nmt.bleu import corpus_bleu
from embedlab.nmt.config import NmtEvalConfig
from embedlab.nmt.data import EncodedSplit
from embedlab.nmt.decode import translate_batch
from embedlab.nmt.model import TransformerNmt
from embedlab.nmt.objective import label_smoothed_nll
from embedlab.nmt.vocab import EOS, Vocabulary


@torch.no_grad()
def token_nll(
    model: TransformerNmt, split: EncodedSplit, max_tokens: int, device: torch.device
) -> dict[str, float]:
    """``{"loss": mean NLL per target token (nats, </s> included, no smoothing),
    "perplexity", "tokens"}`` in eval mode (mode restored)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in split.iterate(max_tokens):
        batch = batch.to(device)
        logits = model(batch.source, batch.target_in)  # (B, T, V)
        _, nll = label_smoothed_nll(logits, batch.target_out, 0.0)
        total += float(nll.double())
        count += batch.target_tokens
    model.train(was_training)
    mean = total / max(1, count)
    return {"loss": mean, "perplexity": math.exp(mean) if mean < 700 else math.inf, "tokens": count}


def translate_ids(
    model: TransformerNmt,
    source: Sequence[Sequence[int]],
    config: NmtEvalConfig,
    device: torch.device,
    *,
    beam: int | None = None,
) -> list[list[int]]:
    """Translations (ids, no ``</s>``) of ``source`` sentences in input order; batches of at most
    ``config.max_tokens / beam`` source tokens, sorted by length."""
    width = config.beam if beam is None else beam
    out: list[list[int]] = [[] for _ in source]
    for index in source_batches(source, max(1, config.max_tokens // width)):
        batch = pad([list(source[i]) + [EOS] for i in index]).to(device)
        hyps = translate_batch(
            model, batch, beam=width, alpha=config.length_penalty,
            max_len_a=config.max_len_a, max_len_b=config.max_len_b,
        )  # fmt: skip
        for i, hyp in zip(index, hyps, strict=True):
            out[i] = hyp.tokens
    return out


def bleu_of(
    model: TransformerNmt,
    split: EncodedSplit,
    vocab: Vocabulary,
    config: NmtEvalConfig,
    device: torch.device,
    *,
    limit: int | None = None,
    beam: int | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """BLEU of the translations of the first ``limit`` sentences (all: ``None``) against the raw
    references; returns the metrics and the detokenized translations."""
    n = len(split) if limit is None else min(limit, len(split))
    ids = translate_ids(model, split.source[:n], config, device, beam=beam)
    hypotheses = [vocab.decode(h) for h in ids]
    result = corpus_bleu(hypotheses, split.raw.target[:n])
    return {"bleu": result.score, "sacrebleu_signature": result.signature}, hypotheses


def evaluate_split(
    model: TransformerNmt,
    split: EncodedSplit,
    vocab: Vocabulary,
    config: NmtEvalConfig,
    device: torch.device,
) -> tuple[dict[str, Any], list[str]]:
    """``{"loss", "perplexity", "tokens", "bleu", "sacrebleu_signature", "sentences", "beam",
    "seconds"}`` of the whole split (beam search of ``config``) and the translations."""
    start = time.perf_counter()
    metrics: dict[str, Any] = token_nll(model, split, config.max_tokens, device)
    scores, hypotheses = bleu_of(model, split, vocab, config, device)
    metrics.update(scores, sentences=len(split), beam=config.beam)
    metrics["seconds"] = time.perf_counter() - start
    return metrics, hypotheses
