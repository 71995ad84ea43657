"""The loss registry: one generic suite over every entry (CONVENTIONS.md #11), its declarations
against the functions and the config, and training types that dispatch on it, never on names."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest
import torch

from embedlab.kge.config import LossConfig
from embedlab.kge.objective import Batch, apply_loss, apply_tail_linear_loss
from embedlab.losses import LOSSES, LossSpec

NAMES = sorted(LOSSES)
Q, M, D = 6, 9, 4


def _keywords(fn: Callable[..., object]) -> set[str]:
    return set(inspect.signature(fn).parameters)


def test_registry_lists_the_six_losses_of_the_config() -> None:
    choices = set(get_args(LossConfig.model_fields["name"].annotation))
    assert set(LOSSES) == choices == {"sce", "sce_ls", "sce_bc", "ns", "ns_freq", "sans"}


@pytest.mark.parametrize("name", NAMES)
def test_declarations_match_the_function_and_the_config(name: str) -> None:
    spec = LOSSES[name]
    fields = set(LossConfig.model_fields)
    for fn in (spec.fn, spec.tail_linear):
        if fn is None:
            continue
        kw = _keywords(fn)
        assert set(spec.hyperparameters) <= kw & fields, "hyperparameters: config fields and kwargs"
        assert ("weights" in kw) >= spec.example_weights
    assert ("noise" in _keywords(spec.fn)) == spec.noise
    if spec.tail_linear is not None:
        assert spec.family == "softmax"


def _inputs(spec: LossSpec, generator: torch.Generator) -> Batch:
    batch = Batch(targets=torch.randint(0, M, (Q,), generator=generator))
    if spec.example_weights:
        batch.weights = torch.rand(Q, generator=generator, dtype=torch.float64) + 0.5
    if spec.noise:
        noise = torch.rand(Q, M, generator=generator, dtype=torch.float64) + 0.1
        batch.noise = noise / noise.sum(dim=1, keepdim=True)
    return batch


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_is_a_finite_scalar_with_gradients(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    config = LossConfig(name=name, freq_reading="weighted", margin=0.5)
    scores = torch.randn(Q, M, generator=g, dtype=torch.float64, requires_grad=True)
    value = apply_loss(config, scores, _inputs(LOSSES[name], g))
    assert value.shape == () and torch.isfinite(value)
    (grad,) = torch.autograd.grad(value, scores)
    assert torch.isfinite(grad).all() and (grad.abs().sum(dim=1) > 0).all()  # every row learns


@pytest.mark.parametrize("name", [n for n in NAMES if LOSSES[n].tail_linear is not None])
def test_tail_linear_kernel_equals_the_score_matrix_path(name: str) -> None:
    g = torch.Generator().manual_seed(1)
    config = LossConfig(name=name)
    q = torch.randn(Q, D, generator=g, dtype=torch.float64, requires_grad=True)
    c = torch.randn(M, D, generator=g, dtype=torch.float64, requires_grad=True)
    batch = _inputs(LOSSES[name], g)
    fused = apply_tail_linear_loss(config, q, c, batch)
    plain = apply_loss(config, q @ c.T, batch)
    assert fused.item() == pytest.approx(plain.item(), rel=1e-10)
    for a, b in zip(
        torch.autograd.grad(fused, (q, c)), torch.autograd.grad(plain, (q, c)), strict=True
    ):
        torch.testing.assert_close(a, b)


def test_missing_declared_inputs_are_refused() -> None:
    scores = torch.zeros(Q, M)
    with pytest.raises(ValueError, match="backward-correction"):
        apply_loss(LossConfig(name="sce_bc"), scores, Batch(targets=torch.zeros(Q).long()))
    with pytest.raises(ValueError, match="noise"):
        apply_loss(
            LossConfig(name="ns_freq", freq_reading="weighted"),
            scores,
            Batch(targets=torch.zeros(Q).long()),
        )


def test_ns_freq_without_noise_is_ns_over_drawn_negatives() -> None:
    """Sampled reading: the negatives came from p_n, so they are weighted uniformly."""
    scores = torch.randn(Q, M, generator=torch.Generator().manual_seed(2))
    batch = Batch(targets=torch.zeros(Q).long())
    sampled = apply_loss(LossConfig(name="ns_freq", freq_reading="sampled"), scores, batch)
    assert sampled.item() == pytest.approx(apply_loss(LossConfig(name="ns"), scores, batch).item())


TRAINING_TYPES = ["one_vs_all.py", "kvs_all.py", "negative_sampling.py", "objective.py"]


@pytest.mark.parametrize("module", TRAINING_TYPES)
def test_training_types_never_test_a_loss_name(module: str) -> None:
    """No ``x.name == "..."`` / ``in ("...",)``: declarations in LOSSES decide."""
    path = Path(__file__).resolve().parents[2] / "src" / "embedlab" / "kge" / module
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        names = any(isinstance(s, ast.Attribute) and s.attr == "name" for s in sides)
        literals = any(
            isinstance(c, ast.Constant) and isinstance(c.value, str)
            for s in sides
            for c in ast.walk(s)
        )
        if names and literals:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not found, f"{module} tests loss names:\n" + "\n".join(found)
