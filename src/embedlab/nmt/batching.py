"""Length-bucketed token-budget batches of sentence pairs (fairseq's ``--max-tokens``).

A pair is ``(source ids + [</s>], target ids)``; the decoder reads ``[<s>] + target`` and
predicts ``target + [</s>]``, so each side is one token longer than its subwords. Pairs are
sorted by (source length, target length, index) and cut greedily into batches whose padded size
``pairs * max(longest source, longest target)`` is at most ``max_tokens``; every pair is in
exactly one batch. The batches are fixed; an epoch visits them in a shuffled order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from embedlab.nmt.vocab import BOS, EOS, PAD


@dataclass(frozen=True)
class PairBatch:
    """Padded tensors of one batch (``PAD`` = 0).

    Attributes:
        source: ``(B, S)`` source ids followed by ``</s>``.
        target_in: ``(B, T)`` ``<s>`` followed by the target ids (decoder input).
        target_out: ``(B, T)`` the target ids followed by ``</s>`` (prediction targets).
        index: ``(B,)`` positions of the pairs in the split.
    """

    source: torch.Tensor
    target_in: torch.Tensor
    target_out: torch.Tensor
    index: torch.Tensor

    def to(self, device: torch.device) -> PairBatch:
        return PairBatch(
            source=self.source.to(device),
            target_in=self.target_in.to(device),
            target_out=self.target_out.to(device),
            index=self.index,
        )

    @property
    def target_tokens(self) -> int:
        return int((self.target_out != PAD).sum())


def pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """``rows`` right-padded with ``PAD`` to ``(len(rows), longest)`` int64."""
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def token_budget_batches(
    source_lengths: Sequence[int], target_lengths: Sequence[int], max_tokens: int
) -> list[list[int]]:
    """Indices of the pairs in each batch (see the module docstring); lengths include the one
    extra token of each side. A pair longer than ``max_tokens`` on its own is a batch alone."""
    order = sorted(
        range(len(source_lengths)), key=lambda i: (source_lengths[i], target_lengths[i], i)
    )
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        width = max(longest, source_lengths[i], target_lengths[i])
        if current and (len(current) + 1) * width > max_tokens:
            batches.append(current)
            current, width = [], max(source_lengths[i], target_lengths[i])
        current.append(i)
        longest = width
    if current:
        batches.append(current)
    return batches


def collate(
    source: Sequence[Sequence[int]], target: Sequence[Sequence[int]], index: Sequence[int]
) -> PairBatch:
    """The :class:`PairBatch` of the pairs ``index`` (ids without ``<s>``/``</s>``)."""
    return PairBatch(
        source=pad([list(source[i]) + [EOS] for i in index]),
        target_in=pad([[BOS, *target[i]] for i in index]),
        target_out=pad([[*target[i], EOS] for i in index]),
        index=torch.tensor(list(index), dtype=torch.long),
    )


def source_batches(source: Sequence[Sequence[int]], max_tokens: int) -> list[list[int]]:
    """Token-budget batches over source sentences alone (decoding), by source length."""
    lengths = [len(s) + 1 for s in source]
    return token_budget_batches(lengths, [0] * len(lengths), max_tokens)
