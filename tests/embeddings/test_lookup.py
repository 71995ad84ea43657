"""Embedding table: initializer statistics, dropout semantics, penalties against hand values."""

from __future__ import annotations

import pytest
import torch

from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.lookup import EmbeddingTable


def table(rows: int = 2000, dim: int = 50, **cfg: object) -> EmbeddingTable:
    torch.manual_seed(0)
    return EmbeddingTable(num_rows=rows, dim=dim, config=EmbeddingConfig.model_validate(cfg))


def test_normal_init_std() -> None:
    w = table(init={"name": "normal", "scale": 0.3}).weight
    assert w.mean().item() == pytest.approx(0.0, abs=0.01)
    assert w.std().item() == pytest.approx(0.3, rel=0.02)  # 100k samples: se of std ~0.2%


def test_uniform_init_bounds_and_std() -> None:
    w = table(init={"name": "uniform", "scale": 0.281}).weight
    assert w.abs().max().item() <= 0.281
    assert w.std().item() == pytest.approx(0.281 / 3**0.5, rel=0.02)


@pytest.mark.parametrize("name", ["xavier_normal", "xavier_uniform"])
def test_xavier_std(name: str) -> None:
    w = table(rows=2000, dim=50, init={"name": name, "scale": 2.0}).weight
    expected = 2.0 * (2.0 / (2000 + 50)) ** 0.5
    assert w.std().item() == pytest.approx(expected, rel=0.02)


def test_dropout_rate_scale_and_eval_identity() -> None:
    t = table(dropout=0.3)
    out = t.all()
    zero = (out == 0).double().mean().item()
    assert zero == pytest.approx(0.3, abs=0.01)  # 100k draws: se 0.0015
    kept = out != 0
    torch.testing.assert_close(out[kept], t.weight[kept] / 0.7)
    t.eval()
    torch.testing.assert_close(t.all(), t.weight)
    idx = torch.tensor([[1, 2], [3, 4]])
    assert t(idx).shape == (2, 2, 50)


def test_lp_penalty_hand_computed() -> None:
    t = table(rows=3, dim=2, regularize={"kind": "lp", "weight": 0.5, "p": 2})
    with torch.no_grad():
        t.weight.copy_(torch.tensor([[1.0, -2.0], [0.0, 3.0], [1.0, 1.0]]))
    assert t.penalty(torch.tensor([0])).item() == pytest.approx(0.5 / 2 * (1 + 4 + 9 + 1 + 1))


def test_weighted_lp_and_n3_hand_computed() -> None:
    t = table(rows=3, dim=2, regularize={"kind": "lp", "weight": 0.5, "p": 2, "weighted": True})
    n3 = table(rows=3, dim=2, regularize={"kind": "n3", "weight": 0.5, "weighted": True})
    values = torch.tensor([[1.0, -2.0], [0.0, 3.0], [1.0, 1.0]])
    with torch.no_grad():
        t.weight.copy_(values)
        n3.weight.copy_(values)
    idx = torch.tensor([0, 0, 2, 0])  # row 0 three times, row 2 once
    assert t.penalty(idx).item() == pytest.approx(0.5 / 2 * (3 * 5 + 1 * 2) / 4)
    assert n3.penalty(idx).item() == pytest.approx(0.5 / 3 * (3 * 9 + 1 * 2) / 4)


def test_no_penalty_by_default() -> None:
    assert table().penalty(torch.tensor([0, 1])).item() == 0.0
