"""Checkpoint averaging equals the mean of the state dicts; snapshots keep the newest N."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from embedlab.nmt.average import average_last, average_state_dicts, save_snapshot, snapshots


def test_average_is_the_mean_and_keeps_integer_tensors_of_the_last() -> None:
    states = [
        {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor([1])},
        {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor([2])},
        {"w": torch.tensor([2.0, 8.0]), "n": torch.tensor([7])},
    ]
    out = average_state_dicts(states)
    assert torch.equal(out["w"], torch.tensor([2.0, 5.0])) and torch.equal(
        out["n"], torch.tensor([7])
    )
    with pytest.raises(ValueError, match="different tensors"):
        average_state_dicts([{"w": torch.zeros(1)}, {"v": torch.zeros(1)}])


def test_snapshots_of_a_model_average_to_the_mean(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    taken = []
    for epoch in range(1, 6):
        with torch.no_grad():
            for p in model.parameters():
                p.normal_()
        save_snapshot(tmp_path, epoch, model, keep=3)
        taken.append({k: v.clone() for k, v in model.state_dict().items()})
    assert [p.name for p in snapshots(tmp_path)] == [f"epoch-000{e}.safetensors" for e in (3, 4, 5)]
    averaged, chosen = average_last(tmp_path, 3)
    assert len(chosen) == 3
    for key, value in averaged.items():
        mean = torch.stack([t[key] for t in taken[-3:]]).mean(0)
        assert torch.allclose(value, mean, atol=1e-6), key
    two, _ = average_last(tmp_path, 2)
    assert torch.allclose(two["0.weight"], (taken[3]["0.weight"] + taken[4]["0.weight"]) / 2)
