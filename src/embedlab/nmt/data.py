"""A parallel corpus encoded with a run's vocabulary, and its batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from embedlab.datasets.parallel import ParallelSplit, load_parallel
from embedlab.nmt.batching import PairBatch, collate, token_budget_batches
from embedlab.nmt.config import NmtConfig
from embedlab.nmt.vocab import Vocabulary


@dataclass(frozen=True)
class EncodedSplit:
    """Subword ids of both sides (no ``<s>``/``</s>``) and the raw sentences (BLEU's
    references are the raw, detokenized target sentences)."""

    source: list[list[int]]
    target: list[list[int]]
    raw: ParallelSplit

    def __len__(self) -> int:
        return len(self.source)

    def batches(self, max_tokens: int) -> list[list[int]]:
        """Token-budget batches (:func:`~embedlab.nmt.batching.token_budget_batches`)."""
        return token_budget_batches(
            [len(s) + 1 for s in self.source], [len(t) + 1 for t in self.target], max_tokens
        )

    def collate(self, index: list[int]) -> PairBatch:
        return collate(self.source, self.target, index)

    def iterate(self, max_tokens: int) -> Iterator[PairBatch]:
        """Every pair once, in token-budget batches sorted by length."""
        for index in self.batches(max_tokens):
            yield self.collate(index)


def load_splits(config: NmtConfig) -> dict[str, ParallelSplit]:
    """The raw train/valid/test sentences of ``config.dataset``."""
    d = config.data
    prefixes = {"train": d.train, "valid": d.valid, "test": d.test}
    return load_parallel(config.dataset, source=d.source, target=d.target, prefixes=prefixes)


def encode(split: ParallelSplit, vocab: Vocabulary) -> EncodedSplit:
    return EncodedSplit(
        source=vocab.encode(split.source), target=vocab.encode(split.target), raw=split
    )


def filter_long(split: EncodedSplit, max_length: int) -> tuple[EncodedSplit, int]:
    """The pairs with at most ``max_length`` subwords on both sides, and how many were dropped
    (training only; the raw sentences are kept aligned)."""
    keep = [
        i
        for i, (s, t) in enumerate(zip(split.source, split.target, strict=True))
        if len(s) <= max_length and len(t) <= max_length
    ]
    raw = ParallelSplit(
        source=[split.raw.source[i] for i in keep], target=[split.raw.target[i] for i in keep]
    )
    kept = EncodedSplit(
        source=[split.source[i] for i in keep], target=[split.target[i] for i in keep], raw=raw
    )
    return kept, len(split) - len(keep)


def shuffled(batches: list[list[int]], generator: torch.Generator) -> list[list[int]]:
    """``batches`` in the order of a permutation drawn from ``generator``."""
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]
