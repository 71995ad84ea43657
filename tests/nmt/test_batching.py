"""Token-budget batches: within the budget, every pair exactly once; padded tensors."""

from __future__ import annotations

import random

import pytest
import torch

from embedlab.nmt.batching import collate, token_budget_batches
from embedlab.nmt.vocab import BOS, EOS, PAD


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("budget", [16, 50, 200])
def test_batches_respect_the_budget_and_cover_every_pair_once(seed: int, budget: int) -> None:
    rng = random.Random(seed)
    src = [rng.randint(2, 16) for _ in range(300)]
    tgt = [rng.randint(2, 16) for _ in range(300)]
    batches = token_budget_batches(src, tgt, budget)
    assert sorted(i for b in batches for i in b) == list(range(300))
    for b in batches:
        assert len(b) * max(max(src[i], tgt[i]) for i in b) <= budget
    # greedy cuts: the next pair would not have fitted in the previous batch
    for first, second in itertools_pairs(batches):
        nxt = second[0]
        width = max(max(src[i], tgt[i]) for i in [*first, nxt])
        assert (len(first) + 1) * width > budget


def itertools_pairs(batches: list[list[int]]) -> list[tuple[list[int], list[int]]]:
    return list(zip(batches, batches[1:], strict=False))


def test_a_pair_over_the_budget_is_a_batch_alone() -> None:
    batches = token_budget_batches([3, 40, 3], [3, 2, 3], 10)
    assert [1] in batches and sorted(i for b in batches for i in b) == [0, 1, 2]


def test_collate_shifts_the_target() -> None:
    batch = collate([[5, 6], [7]], [[8, 9, 10], [11]], [0, 1])
    assert batch.source.tolist() == [[5, 6, EOS], [7, EOS, PAD]]
    assert batch.target_in.tolist() == [[BOS, 8, 9, 10], [BOS, 11, PAD, PAD]]
    assert batch.target_out.tolist() == [[8, 9, 10, EOS], [11, EOS, PAD, PAD]]
    assert batch.target_tokens == 6
    assert torch.equal(batch.index, torch.tensor([0, 1]))
