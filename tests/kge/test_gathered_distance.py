"""Oracle tests of the gathered distance kernel (``gathered_distance.py``, negative sampling
for TransE/RotatE) against gathering ``(Q, k, d)`` rows and the naive formula in float64:
values, gradients (incl. repeated candidate ids, which must accumulate), block edges,
gradcheck, the compiled float32 path, id checks, and the model's negative-sampling scores."""

from __future__ import annotations

import pytest
import torch

from embedlab.kge.config import build_config
from embedlab.kge.interactions import gathered_distance as gd
from embedlab.kge.interactions.gathered_distance import gathered_distance_scores
from embedlab.kge.model import KgeModel

KINDS = ["l1", "l2", "rotate"]


def naive(kind: str, a: torch.Tensor, table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``(Q, d)``, ``(N, d)``, ``(Q, k)`` -> ``(Q, k)`` by materializing ``(Q, k, d)`` rows."""
    diff = a.unsqueeze(1) - table[ids]  # (Q, k, d)
    if kind == "l1":
        return -diff.abs().sum(-1)
    if kind == "l2":
        return -(diff * diff).sum(-1).add(1e-12).sqrt()
    half = a.shape[1] // 2
    return -(diff[..., :half] ** 2 + diff[..., half:] ** 2).add(1e-12).sqrt().sum(-1)


def inputs(q: int, n: int, k: int, d: int, dtype: torch.dtype = torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(q, d, generator=g, dtype=dtype).requires_grad_()
    table = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_()
    ids = torch.randint(0, n, (q, k), generator=g)  # n < q * k: ids repeat
    return a, table, ids


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eager blocks of 3 query rows at d = 6, k = 5: Q below is not a multiple of 3."""
    monkeypatch.setattr(gd, "EAGER_ELEMENTS", 3 * 5 * 6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("q", "n"), [(1, 1), (1, 9), (7, 4), (11, 30)])
def test_values_and_gradients_equal_naive_float64(
    kind: str, q: int, n: int, small_blocks: None
) -> None:
    a, table, ids = inputs(q, n, 5, 6)
    scores = gathered_distance_scores(kind, a, table, ids)  # type: ignore[arg-type]
    expected = naive(kind, a, table, ids)
    torch.testing.assert_close(scores, expected, rtol=1e-12, atol=1e-12)
    g = torch.randn(q, 5, dtype=torch.float64)
    got = torch.autograd.grad(scores, (a, table), g)
    want = torch.autograd.grad(expected, (a, table), g)
    for x, y in zip(got, want, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-10)


def test_repeated_ids_accumulate(small_blocks: None) -> None:
    """Every candidate is row 0: its gradient is the sum over all Q * k uses."""
    a, table, _ = inputs(4, 3, 5, 6)
    ids = torch.zeros(4, 5, dtype=torch.long)
    (grad_t,) = torch.autograd.grad(gathered_distance_scores("l1", a, table, ids).sum(), table)
    expected = (a.detach() - table.detach()[0]).sign().sum(0) * 5  # d(-|a - t|)/dt = sign(a - t)
    torch.testing.assert_close(grad_t[0], expected)
    assert torch.count_nonzero(grad_t[1:]) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind: str, small_blocks: None) -> None:
    a, table, ids = inputs(5, 4, 5, 6, seed=1)
    assert torch.autograd.gradcheck(
        lambda x, t: gathered_distance_scores(kind, x, t, ids),  # type: ignore[arg-type]
        (a, table),
    )


@pytest.mark.parametrize("kind", ["l1", "rotate"])
def test_compiled_float32_equals_float64(kind: str) -> None:
    """Float32 at a size that runs compiled (Q * d * k >= 2^18) against the float64 oracle."""
    a, table, ids = inputs(40, 300, 129, 64, dtype=torch.float32, seed=2)
    scores = gathered_distance_scores(kind, a, table, ids)  # type: ignore[arg-type]
    a64, t64 = a.detach().double().requires_grad_(), table.detach().double().requires_grad_()
    expected = naive(kind, a64, t64, ids)
    torch.testing.assert_close(scores.double(), expected, rtol=1e-5, atol=1e-4)
    g = torch.randn(40, 129)
    got = torch.autograd.grad(scores, (a, table), g)
    want = torch.autograd.grad(expected, (a64, t64), g.double())
    for x, y in zip(got, want, strict=True):
        torch.testing.assert_close(x.double(), y, rtol=1e-4, atol=1e-3)


def test_ids_out_of_range_raise() -> None:
    a, table, ids = inputs(2, 3, 4, 6)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        gathered_distance_scores("l1", a, table, ids + 3)


def _model(name: str, dropout: float) -> KgeModel:
    torch.manual_seed(0)
    over = [f"model.name={name}", "model.dim=8", f"entity_embedding.dropout={dropout}"]
    config = build_config(overrides=over)
    return KgeModel(num_entities=9, num_relations=2, config=config).double()


@pytest.mark.parametrize("name", ["transe", "rotate"])
def test_model_negative_sampling_scores_use_the_kernel_and_match(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training mode, dropout 0: the gathered kernel runs and equals gathering the rows;
    with dropout the per-row path runs (it draws a mask per candidate row)."""
    calls: list[str] = []
    real = gd.gathered_distance_scores

    def spy(*args: object) -> torch.Tensor:
        calls.append("gathered")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("embedlab.kge.model.gathered_distance_scores", spy)
    model = _model(name, 0.0).train()
    s, r = torch.tensor([0, 3, 8, 1]), torch.tensor([0, 1, 3, 2])
    cand = torch.tensor([[1, 2, 2], [0, 8, 4], [5, 5, 6], [7, 1, 0]])
    got = model.score_candidates(s, r, cand)
    assert calls == ["gathered"]
    h, rel = model.entities(s), model.relations(r)
    anchors = model.interaction.anchor(h, rel)  # type: ignore[attr-defined]
    want = -model.interaction.distance(  # type: ignore[attr-defined]
        anchors.unsqueeze(1), model.entities.lookup(cand)
    )
    torch.testing.assert_close(got, want)
    calls.clear()
    assert _model(name, 0.5).train().score_candidates(s, r, cand).shape == (4, 3)
    assert calls == []
