"""Greedy and batched beam-search decoding of :class:`~embedlab.nmt.model.TransformerNmt`.

Hypothesis space (both decoders): ``y_1 .. y_n`` with ``y_n = </s>`` and ``n <= max_len``; the
ids ``<pad>`` and ``<s>`` are never generated, ``</s>`` is forced at step ``max_len``, where
``max_len = floor(max_len_a * source_length + max_len_b)`` per sentence (``source_length``: source
subwords, ``</s>`` not counted). Each step re-runs the decoder over the whole prefix (no cache).

Beam search (as fairseq's ``SequenceGenerator``, with GNMT's length penalty as OpenNMT-py):
every step takes the ``2K`` best extensions of the ``K`` live beams by summed log-probability;
an extension ending in ``</s>`` among the first ``K`` of them is finished, with score
``sum log p / ((5 + n) / 6) ** alpha`` (Wu et al. 2016; ``n`` counts ``</s>``); the best ``K``
others stay live. A sentence is done once ``K`` hypotheses are finished, at its ``max_len``, or
when no live beam is left; the result is its best finished hypothesis. ``K = 1`` is greedy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from embedlab.nmt.model import TransformerNmt
from embedlab.nmt.vocab import BOS, EOS, PAD


@dataclass(frozen=True)
class Hypothesis:
    """A finished translation: ``tokens`` without ``</s>``, ``log_prob`` summed over the
    ``len(tokens) + 1`` steps, ``score`` = ``log_prob`` over the length penalty."""

    tokens: list[int]
    log_prob: float
    score: float


def max_lengths(source: torch.Tensor, a: float, b: int) -> list[int]:
    """``floor(a * source_length + b)`` per row of ``source (B, S)`` (``</s>``, padding not
    counted), at least 1."""
    lengths = ((source != PAD) & (source != EOS)).sum(1).tolist()
    return [max(1, int(a * n + b)) for n in lengths]


def length_penalty(n: int, alpha: float) -> float:
    """GNMT's ``((5 + n) / 6) ** alpha``."""
    return ((5.0 + n) / 6.0) ** alpha


def step_log_probs(logits: torch.Tensor, at_limit: torch.Tensor) -> torch.Tensor:
    """``log_softmax`` of the last position's ``logits (N, V)`` with ``<pad>``/``<s>`` removed and
    only ``</s>`` left in rows where ``at_limit (N,)`` is True."""
    logp = F.log_softmax(logits.float(), dim=-1)  # (N, V)
    logp[:, PAD] = float("-inf")
    logp[:, BOS] = float("-inf")
    eos = logp[:, EOS].clone()
    logp[at_limit] = float("-inf")
    logp[:, EOS] = eos
    return logp


@torch.no_grad()
def greedy(model: TransformerNmt, source: torch.Tensor, limits: Sequence[int]) -> list[Hypothesis]:
    """The most probable next token at every step, per row of ``source (B, S)``."""
    batch = source.shape[0]
    memory = model.encode(source)  # (B, S, d)
    tokens = torch.full((batch, 1), BOS, dtype=torch.long, device=source.device)  # (B, 1)
    limit = torch.tensor(list(limits), device=source.device)
    total = torch.zeros(batch, dtype=torch.float64, device=source.device)
    ended = torch.zeros(batch, dtype=torch.bool, device=source.device)
    for t in range(1, max(limits) + 1):
        logp = step_log_probs(model.decode(memory, source, tokens)[:, -1], t >= limit)  # (B, V)
        best, token = logp.max(dim=-1)  # (B,)
        token = torch.where(ended, torch.full_like(token, PAD), token)
        total += torch.where(ended, torch.zeros_like(best), best).double()
        tokens = torch.cat([tokens, token.unsqueeze(1)], dim=1)  # (B, t + 1)
        ended |= token == EOS
        if bool(ended.all()):
            break
    out = []
    for row in tokens[:, 1:].tolist():
        body = row[: row.index(EOS)] if EOS in row else row
        out.append(body)
    return [
        Hypothesis(tokens=body, log_prob=float(lp), score=float(lp))
        for body, lp in zip(out, total.tolist(), strict=True)
    ]


@torch.no_grad()
def beam_search(
    model: TransformerNmt, source: torch.Tensor, limits: Sequence[int], *, beam: int, alpha: float
) -> list[Hypothesis]:
    """The best finished hypothesis of each row of ``source (B, S)`` (module docstring)."""
    batch, k, device = source.shape[0], beam, source.device
    memory = model.encode(source).repeat_interleave(k, dim=0)  # (B*K, S, d)
    source_k = source.repeat_interleave(k, dim=0)  # (B*K, S)
    tokens = torch.full((batch * k, 1), BOS, dtype=torch.long, device=device)  # (B*K, t)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live beam at the start
    limit = torch.tensor(list(limits), device=device).repeat_interleave(k)  # (B*K,)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = [False] * batch
    for t in range(1, max(limits) + 1):
        logp = step_log_probs(model.decode(memory, source_k, tokens)[:, -1], t >= limit)
        vocab = logp.shape[-1]
        cand = (scores.reshape(-1, 1) + logp).reshape(batch, k * vocab)  # (B, K*V)
        top, index = cand.topk(min(2 * k, k * vocab), dim=1)  # (B, 2K)
        origin, token = index // vocab, index % vocab  # (B, 2K)
        new_scores = torch.full((batch, k), float("-inf"), device=device)
        pick = torch.zeros((batch, k), dtype=torch.long, device=device)  # beam of origin
        picked_token = torch.full((batch, k), PAD, dtype=torch.long, device=device)
        top_l, origin_l, token_l = top.tolist(), origin.tolist(), token.tolist()
        for b in range(batch):
            if done[b]:
                continue
            alive = 0
            for j, (value, beam_of, tok) in enumerate(
                zip(top_l[b], origin_l[b], token_l[b], strict=True)
            ):
                if value == float("-inf"):
                    break
                if tok == EOS:
                    if j < k:
                        body = tokens[b * k + beam_of, 1:].tolist()
                        finished[b].append(Hypothesis(
                            tokens=body, log_prob=value, score=value / length_penalty(t, alpha)
                        ))  # fmt: skip
                elif alive < k:
                    new_scores[b, alive], pick[b, alive] = value, beam_of
                    picked_token[b, alive] = tok
                    alive += 1
            done[b] = len(finished[b]) >= k or t >= limits[b] or alive == 0
            if done[b]:
                new_scores[b] = float("-inf")
        if all(done):
            break
        rows = (torch.arange(batch, device=device).unsqueeze(1) * k + pick).reshape(-1)  # (B*K,)
        tokens = torch.cat([tokens[rows], picked_token.reshape(-1, 1)], dim=1)
        scores = new_scores
    return [max(hyps, key=lambda h: h.score) for hyps in finished]


def translate_batch(
    model: TransformerNmt,
    source: torch.Tensor,
    *,
    beam: int,
    alpha: float,
    max_len_a: float,
    max_len_b: int,
) -> list[Hypothesis]:
    """Greedy for ``beam == 1``, else :func:`beam_search`; the model is put in eval mode (and
    its mode restored)."""
    was_training = model.training
    model.eval()
    limits = max_lengths(source, max_len_a, max_len_b)
    try:
        if beam == 1:
            return greedy(model, source, limits)
        return beam_search(model, source, limits, beam=beam, alpha=alpha)
    finally:
        model.train(was_training)
