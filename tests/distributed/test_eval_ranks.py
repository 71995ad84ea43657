"""Distributed evaluation gives exactly the single-process filtered and raw ranks, and the pure
helpers of :mod:`embedlab.distributed` / :mod:`embedlab.training.data_parallel` behave."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from embedlab.distributed import World, rank_seed, shard_bounds
from embedlab.training.data_parallel import local_slice, merge_rank_rng, rank_rng
from tests.distributed.launch import run, torchrun_argv

WORKER = str(Path(__file__).with_name("worker_eval.py"))


@pytest.mark.parametrize("batch_size", [7, 4096])
def test_two_rank_ranks_equal_one_process_exactly(batch_size: int, tmp_path: Path) -> None:
    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    run(torchrun_argv(1, WORKER, str(one), str(batch_size)))
    run(torchrun_argv(2, WORKER, str(two), str(batch_size)))
    a, b = load_file(str(one)), load_file(str(two))
    assert int(a["world_size"]) == 1 and int(b["world_size"]) == 2
    assert len(a["optimistic"]) == 2002
    keys = ("optimistic", "pessimistic", "num_candidates", "raw_optimistic", "raw_pessimistic")
    for key in keys:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(("n", "world_size", "align"), [(10, 2, 1), (7, 3, 1), (2002, 2, 7),
                                                       (3, 4, 1), (100, 3, 64)])  # fmt: skip
def test_shard_bounds_cut_the_range_into_contiguous_aligned_slices(
    n: int, world_size: int, align: int
) -> None:
    bounds = [shard_bounds(n, World(rank=r, world_size=world_size), align=align)
              for r in range(world_size)]  # fmt: skip
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (_, stop), (start, _) in zip(bounds, bounds[1:], strict=False):
        assert stop == start
    for start, stop in bounds:
        assert start <= stop and (start % align == 0 or start == n)
    sizes = [-(-(stop - start) // align) for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1  # whole blocks spread evenly


def test_local_slice_shares_sum_to_one_and_rows_partition_the_batch() -> None:
    batch = torch.arange(11).unsqueeze(1)
    parts = [local_slice(batch, World(rank=r, world_size=3)) for r in range(3)]
    assert torch.equal(torch.cat([p for p, _ in parts if p is not None]), batch)
    assert sum(share for _, share in parts) == pytest.approx(1.0)
    row, share = local_slice(batch[:1], World(rank=0, world_size=2))  # rank 1 has the row
    assert share == 0.0 and torch.equal(row, batch[:1])  # a stand-in that counts for nothing


def test_rank_seeds_differ_per_rank_and_rank_0_is_the_one_process_seed() -> None:
    assert rank_seed(7, 0) == 7
    seeds = {rank_seed(seed, rank) for seed in range(50) for rank in range(1, 9)}
    assert len(seeds) == 50 * 8 and all(0 <= s < 2**63 for s in seeds)
    assert rank_seed(7, 3) == rank_seed(7, 3)


def test_rank_rng_states_round_trip_through_one_checkpoint_dict() -> None:
    states = [{"torch": torch.tensor([r, r]), "shuffle": torch.tensor([9])} for r in range(3)]
    merged = merge_rank_rng(states)
    for rank in range(3):
        mine = rank_rng(merged, rank)
        assert mine is not None and torch.equal(mine["torch"], states[rank]["torch"])
        assert torch.equal(mine["shuffle"], torch.tensor([9]))
    assert rank_rng(merged, 3) is None  # a checkpoint of fewer ranks
