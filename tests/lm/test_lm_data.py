"""batchify and truncated-BPTT windows against naive slicing; the lr schedule."""

from __future__ import annotations

import pytest
import torch

from embedlab.lm.config import LmTrainConfig
from embedlab.lm.data import batchify, detach_state, num_windows, windows
from embedlab.lm.run import learning_rate


@pytest.mark.parametrize(("n", "batch"), [(100, 1), (100, 3), (101, 10), (57, 4)])
def test_batchify_rows_are_contiguous_streams(n: int, batch: int) -> None:
    ids = torch.arange(n) * 7 % 13
    data = batchify(ids, batch)
    length = n // batch
    assert data.shape == (batch, length)
    for b in range(batch):
        assert data[b].tolist() == ids[b * length : (b + 1) * length].tolist()


def test_batchify_needs_two_tokens_per_stream() -> None:
    with pytest.raises(ValueError, match="need at least 2"):
        batchify(torch.arange(7), 4)


@pytest.mark.parametrize(("length", "bptt"), [(2, 1), (21, 20), (22, 20), (50, 7), (13, 100)])
def test_windows_against_naive_slicing(length: int, bptt: int) -> None:
    data = torch.arange(3 * length).reshape(3, length)
    got = list(windows(data, bptt))
    assert len(got) == num_windows(length, bptt)
    # oracle: position t of a row predicts t + 1; windows of bptt positions in order
    positions = list(range(length - 1))
    chunks = [positions[i : i + bptt] for i in range(0, len(positions), bptt)]
    assert len(got) == len(chunks)
    for (inputs, targets), chunk in zip(got, chunks, strict=True):
        for b in range(3):
            assert inputs[b].tolist() == [int(data[b, t]) for t in chunk]
            assert targets[b].tolist() == [int(data[b, t + 1]) for t in chunk]
    # every token but the first of a row is a target exactly once
    targets = torch.cat([t for _, t in got], dim=1)
    assert torch.equal(targets, data[:, 1:])


def test_detach_state_cuts_the_graph() -> None:
    h = torch.ones(2, 3, 4, requires_grad=True) * 2
    c = torch.ones(2, 3, 4, requires_grad=True) * 3
    dh, dc = detach_state((h, c))
    assert not dh.requires_grad and not dc.requires_grad
    assert torch.equal(dh, h) and torch.equal(dc, c)


def test_zaremba_lr_schedules() -> None:
    small = LmTrainConfig()  # lr 1, halved after epoch 4
    assert [learning_rate(small, e) for e in (1, 4, 5, 6, 13)] == [1, 1, 0.5, 0.25, 0.5**9]
    medium = LmTrainConfig(lr_decay=1 / 1.2, decay_after=6, max_epochs=39)
    assert learning_rate(medium, 6) == 1.0
    assert learning_rate(medium, 8) == pytest.approx(1 / 1.44)
