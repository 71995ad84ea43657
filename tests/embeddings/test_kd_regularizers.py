"""KdEmbedding (paper 003): temperature schedule, Gumbel statistics, entropy and distillation
penalties, guidance, the template order (SSE, dropout), state round trip, factory."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from scipy import stats
from torch import nn

from embedlab.embeddings import EMBEDDING_LAYERS, KdEmbedding, build_embedding
from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.kd import set_training_progress
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.errors import UserError
from tests.embeddings.kd_oracles import (  # noqa: F401  (_one_thread: autouse fixture)
    ALPHA,
    COMBO_ARGS,
    COMBOS,
    DIM,
    DP,
    TAU,
    D,
    K,
    N,
    _linear,
    _one_thread,
    book_of,
    close,
    combo,
    compose_oracle,
    dense_oracle,
    logits_oracle,
    make,
)


# -- temperature schedule ------------------------------------------------------------------
def test_temperature_schedule_geometric() -> None:
    tau0, tau1, epochs = 2.0, 0.125, 8.0
    layer = make(temperature=tau0, temperature_final=tau1, anneal_epochs=epochs)
    other = make(temperature=tau0, temperature_final=tau1, anneal_epochs=epochs)
    fixed = make(temperature=tau0)
    lookup = EmbeddingTable(num_rows=3, dim=2, config=EmbeddingConfig())
    model = nn.ModuleDict({"a": layer, "b": nn.Sequential(other, lookup), "c": fixed})
    expected = [
        (-1.0, tau0),
        (0.0, tau0),
        (epochs / 2, math.sqrt(tau0 * tau1)),
        (epochs / 4, tau0 * (tau1 / tau0) ** 0.25),
        (epochs, tau1),
        (3 * epochs, tau1),
    ]
    for epoch, tau in expected:
        layer.set_progress(epoch)
        assert float(layer.temperature) == pytest.approx(tau, rel=1e-6)
        set_training_progress(model, epoch)
        assert float(other.temperature) == pytest.approx(tau, rel=1e-6)
        assert float(fixed.temperature) == tau0


def test_temperature_is_used_by_the_soft_forward() -> None:
    layer = make(straight_through=False, temperature=4.0, temperature_final=0.5).train()
    idx = torch.tensor([3])
    layer.set_progress(layer.kd.anneal_epochs)
    soft = torch.softmax(layer.logits.detach()[3] / 0.5, dim=-1)
    expected = compose_oracle(layer, [soft[j] @ book_of(layer, j).detach() for j in range(D)])
    close(layer(idx)[0], expected.detach())


# -- Gumbel --------------------------------------------------------------------------------
@pytest.mark.parametrize("ste", [True, False])
def test_gumbel_huge_gap_hard_code_is_argmax(ste: bool) -> None:
    layer = make(relaxation="gumbel", straight_through=ste, temperature=1.0).train()
    target = torch.randint(0, K, (N, D), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        layer.logits.zero_()
        layer.logits.scatter_(2, target.unsqueeze(2), 100.0)  # noise spans < 25 nats
    torch.manual_seed(7)
    for _ in range(5):
        weights = layer.relaxed_codes(torch.arange(N))
        assert torch.equal(weights.argmax(-1), target)
    assert torch.equal(layer.codes(), target)
    if ste:
        close(layer(torch.arange(N)), layer.eval()(torch.arange(N)))


def test_gumbel_ste_hard_codes_uniform_chi_square() -> None:
    """Zero logits: the hard codes are uniform over K (chi-square, df = K - 1, alpha = 1e-3)."""
    rows, k = 400, 8
    layer = make(rows=rows, K=k, D=D, relaxation="gumbel", straight_through=True).train()
    with torch.no_grad():
        layer.logits.zero_()
    torch.manual_seed(8)
    weights = layer.relaxed_codes(torch.arange(rows))  # (rows, D, K)
    assert torch.equal(weights.sum(-1), torch.ones(rows, D))
    assert torch.all((weights == 0) | (weights == 1))
    counts = torch.bincount(weights.argmax(-1).reshape(-1), minlength=k).double()
    expected = rows * D / k
    statistic = float(((counts - expected) ** 2 / expected).sum())
    assert statistic < stats.chi2.ppf(1 - ALPHA, k - 1)
    again = layer.relaxed_codes(torch.arange(rows)).argmax(-1)
    assert not torch.equal(again, weights.argmax(-1))  # fresh noise per call


# -- entropy and penalties -----------------------------------------------------------------
def _hand_entropy(logits: torch.Tensor, tau: float) -> float:
    """Mean over rows and positions of ``-sum_k p log p``, p = softmax(logits / tau)."""
    values = []
    for i in range(logits.shape[0]):
        for j in range(logits.shape[1]):
            z = [float(x) / tau for x in logits[i, j]]
            top = max(z)
            norm = sum(math.exp(x - top) for x in z)
            p = [math.exp(x - top) / norm for x in z]
            values.append(-sum(q * math.log(q) for q in p if q > 0))
    return sum(values) / len(values)


def test_entropy_hand_computed() -> None:
    layer = make()
    rows = torch.tensor([0, 4, 5])
    assert layer.entropy(rows).item() == pytest.approx(
        _hand_entropy(layer.logits.detach()[rows], TAU), rel=1e-5
    )
    with torch.no_grad():
        layer.logits.zero_()
    assert layer.entropy(rows).item() == pytest.approx(math.log(K), rel=1e-6)
    with torch.no_grad():
        layer.logits[:, :, 1] = 60.0
    assert layer.entropy(rows).item() == pytest.approx(0.0, abs=1e-6)


def test_entropy_penalty_is_weight_times_entropy_over_unique_rows() -> None:
    layer = make(entropy_weight=0.25)
    idx = torch.tensor([[1, 1, 3], [3, 8, 1]])
    unique = torch.tensor([1, 3, 8])
    expected = 0.25 * _hand_entropy(layer.logits.detach()[unique], TAU)
    assert layer.penalty(idx).item() == pytest.approx(expected, rel=1e-5)
    assert make().penalty(idx).item() == 0.0


@pytest.mark.parametrize("training", [False, True])
def test_pdg_penalty_hand_computed(training: bool) -> None:
    teacher = torch.randn(N, DIM, generator=torch.Generator().manual_seed(9))
    layer = make(guidance="pdg", distill_weight=0.3, teacher=teacher, composition="mlp")
    layer.train(training)  # STE + softmax: the training value is the hard one
    idx = torch.tensor([[2, 2, 6], [0, 6, 2]])
    table = dense_oracle(layer)
    dist = [float(((table[i] - teacher[i]) ** 2).sum()) for i in (0, 2, 6)]
    assert layer.penalty(idx).item() == pytest.approx(0.3 * sum(dist) / 3, rel=1e-5)
    assert torch.equal(layer.teacher, teacher)


def test_lp_penalty_on_composed_rows_hand_computed() -> None:
    layer = make(emb={"regularize": {"kind": "lp", "weight": 0.5, "p": 2}})
    idx = torch.tensor([4, 4, 4, 1])
    table = dense_oracle(layer)
    expected = 0.5 / 2 * (3 * float((table[4] ** 2).sum()) + float((table[1] ** 2).sum())) / 4
    assert layer.eval().penalty(idx).item() == pytest.approx(expected, rel=1e-5)


def test_pdg_teacher_shape_mismatch_raises() -> None:
    with pytest.raises(UserError, match="shape"):
        make(guidance="pdg", teacher=torch.zeros(N, DIM + 1))
    with pytest.raises(UserError, match="shape"):
        make(guidance="pdg", teacher=torch.zeros(N - 1, DIM))


@pytest.mark.parametrize("guidance", ["none", "online"])
def test_autoencode_without_pdg_raises(guidance: str) -> None:
    with pytest.raises(UserError, match="autoencode"):
        make(guidance=guidance, autoencode=True)


def test_online_guidance_value_gradient_and_penalty() -> None:
    layer = make(guidance="online", distill_weight=0.7, composition="lstm").train()
    idx = torch.tensor([[3, 5, 3], [1, 3, 5]])
    g = torch.randn(2, 3, DIM, generator=torch.Generator().manual_seed(10))
    table = dense_oracle(layer)
    out = layer(idx)
    close(out, table[idx])  # value: the KD rows (STE + softmax: hard)
    (out * g).sum().backward()
    expected = torch.zeros(N, DIM).index_add_(0, idx.reshape(-1), g.reshape(-1, DIM))
    assert layer.full.grad is not None and layer.logits.grad is not None
    close(layer.full.grad, expected)  # the same upstream gradient, summed over duplicates
    assert layer.logits.grad.abs().sum() > 0

    layer.zero_grad(set_to_none=True)
    full = layer.full.detach()
    dist = [float(((table[i] - full[i]) ** 2).sum()) for i in (1, 3, 5)]
    penalty = layer.penalty(idx)
    assert penalty.item() == pytest.approx(0.7 * sum(dist) / 3, rel=1e-5)
    penalty.backward()
    assert layer.full.grad is None or torch.all(layer.full.grad == 0)  # target is detached
    assert layer.logits.grad is not None and layer.logits.grad.abs().sum() > 0


# -- template order: SSE -> lookup -> dropout ------------------------------------------------
def test_sse_replaces_indices_in_train_mode_only() -> None:
    layer = make(emb={"sse": {"kind": "se", "p": 1.0}})
    idx = torch.randint(0, N, (4, 5), generator=torch.Generator().manual_seed(12))
    table = dense_oracle(layer)
    torch.manual_seed(13)
    replaced = layer.train().transform_indices(idx)
    assert torch.all(replaced != idx)  # p = 1: every index replaced by another row
    torch.manual_seed(13)
    close(layer(idx), table[replaced])  # the lookup reads the replaced rows
    layer.eval()
    assert torch.equal(layer.transform_indices(idx), idx)
    close(layer(idx), table[idx])


def test_dropout_after_lookup_train_only() -> None:
    layer = make(emb={"dropout": 0.5})
    idx = torch.randint(0, N, (300,), generator=torch.Generator().manual_seed(14))
    table = dense_oracle(layer)
    torch.manual_seed(15)
    out = layer.train()(idx)  # (300, DIM): 1500 coordinates, se of the zero rate 0.013
    zero = out == 0
    assert float(zero.double().mean()) == pytest.approx(0.5, abs=0.065)
    close(out[~zero], (table[idx] / 0.5)[~zero])
    full = layer.all()
    assert 0.3 < float((full == 0).double().mean()) < 0.7
    close(layer.eval()(idx), table[idx])


# -- state and registry ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kd",
    [
        {"composition": "lstm", "shared_codebook": True},
        {"composition": "mlp", "guidance": "pdg", "autoencode": True},
        {"composition": "linear", "guidance": "online", "temperature_final": 0.1},
    ],
)
def test_state_dict_round_trip_reproduces_eval(kd: dict[str, Any], tmp_path: Path) -> None:
    teacher = torch.randn(N, DIM) if kd.get("guidance") == "pdg" else None
    layer = make(teacher=teacher, seed=1, **kd)
    layer.set_progress(3.0)
    path = tmp_path / "kd.safetensors"
    save_file({k: v.contiguous() for k, v in layer.state_dict().items()}, str(path))
    if teacher is not None:
        assert "teacher" in layer.state_dict()
    fresh = make(seed=2, **kd)  # different parameters, no teacher given
    fresh.load_state_dict(load_file(str(path)))
    idx = torch.randint(0, N, (3, 4))
    assert torch.equal(fresh.eval()(idx), layer.eval()(idx))
    assert torch.equal(fresh.codes(), layer.codes())
    assert torch.equal(fresh.temperature, layer.temperature)
    if teacher is not None:
        assert torch.equal(fresh.teacher, teacher)


def test_factory_builds_kd_with_teacher() -> None:
    assert set(EMBEDDING_LAYERS) == {"lookup", "kd"}
    teacher = torch.randn(N, DIM)
    config = EmbeddingConfig.model_validate(
        {"kind": "kd", "kd": {"K": K, "D": D, "code_dim": DP, "guidance": "pdg"}}
    )
    layer = build_embedding(num_rows=N, dim=DIM, config=config, teacher=teacher)
    assert isinstance(layer, KdEmbedding)
    assert torch.equal(layer.teacher, teacher)
    assert set(layer.training_only_parameters()) == {"logits", "teacher", "temperature"}


def _step_grads(layer: KdEmbedding, idx: torch.Tensor, *, reuse: bool) -> dict[str, torch.Tensor]:
    """Gradients of ``sum(layer(idx) * w) + penalty(idx)``; ``reuse`` False forgets the
    lookup's rows first (``train()`` clears them), so the penalty recomputes them."""
    layer.zero_grad(set_to_none=True)
    out = layer(idx)
    weights = torch.linspace(-1.0, 1.0, out.numel()).view_as(out)
    if not reuse:
        layer.train()
    (out.mul(weights).sum() + layer.penalty(idx)).backward()
    return {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("autoencode", [False, True])
@pytest.mark.parametrize("relaxation", ["softmax", "gumbel"])
def test_penalty_reuses_the_lookup_of_the_same_rows(
    autoencode: bool, relaxation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entropy + PDG + Lp after a training lookup of the same rows: one code-logit computation
    per step instead of three, the same loss gradients (softmax relaxation; with Gumbel noise
    the penalty now sees the forward pass's sample, so only the call count is compared)."""
    teacher = torch.randn(N, DIM, generator=torch.Generator().manual_seed(3))
    layer = make(guidance="pdg", autoencode=autoencode, distill_weight=0.3, entropy_weight=0.2,
                 teacher=teacher, straight_through=True, relaxation=relaxation,
                 emb={"regularize": {"kind": "lp", "weight": 0.5, "p": 2}})  # fmt: skip
    layer.train()
    idx = torch.tensor([[2, 2, 6], [0, 6, 7]])
    calls = {"n": 0}
    real = KdEmbedding.code_logits

    def counted(self: KdEmbedding, rows: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return real(self, rows)

    monkeypatch.setattr(KdEmbedding, "code_logits", counted)
    torch.manual_seed(5)
    reused = _step_grads(layer, idx, reuse=True)
    assert calls["n"] == 1
    torch.manual_seed(5)
    fresh = _step_grads(layer, idx, reuse=False)
    assert calls["n"] == 1 + 3  # lookup, then the penalty's entropy and distillation
    if relaxation == "softmax":
        assert reused.keys() == fresh.keys() and len(fresh) >= 3
        for name in fresh:
            torch.testing.assert_close(reused[name], fresh[name], msg=name)
    # the penalty forgets the lookup: a second penalty (or one of other rows) recomputes
    calls["n"] = 0
    layer(idx)
    layer.penalty(idx[:1]).backward()
    layer.penalty(idx).backward()
    assert calls["n"] == 1 + 2 + 2  # lookup; entropy + distillation twice


def test_penalty_after_the_lookups_backward_recomputes() -> None:
    """A penalty of the same rows after a backward pass through the lookup (whose graph is
    freed) recomputes instead of reusing it, and equals the penalty of a fresh layer state."""
    layer = make(entropy_weight=0.5, distill_weight=0.2, guidance="online").train()
    idx = torch.tensor([[1, 4], [4, 8]])
    layer(idx).sum().backward()
    penalty = layer.penalty(idx)
    penalty.backward()  # no "backward through the graph a second time"
    layer.train()  # forgets everything
    assert layer.penalty(idx).item() == pytest.approx(penalty.item(), rel=1e-6)
