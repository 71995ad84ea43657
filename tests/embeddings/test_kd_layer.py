"""KdEmbedding (paper 003): oracle tests against explicit formulas written row by row.

Every composition (linear / mlp / lstm), shared or per-position codebooks, softmax or Gumbel
relaxation, STE on or off. The dense oracle builds the table with a python loop (for each row i
and position j: ``W^j[argmax pi_ij]``, then the composition by its formula; the LSTM is run cell
by cell from ``torch.nn.LSTM``'s weights). Gradients are compared with autograd through an
independent soft/hard path. Statistical tests are seeded and use significance 1e-3.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from scipy import stats
from torch import nn

from embedlab.config import EmbeddingConfig
from embedlab.embeddings import EMBEDDING_LAYERS, KdEmbedding, build_embedding
from embedlab.embeddings.kd import set_training_progress
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.errors import UserError

N, DIM, K, D, DP = 9, 5, 4, 3, 6
TAU = 0.7
ALPHA = 1e-3

COMBOS = [
    pytest.param(
        comp,
        shared,
        relax,
        ste,
        id=f"{comp}-{'shared' if shared else 'perpos'}-{relax}-{'ste' if ste else 'soft'}",
    )
    for comp in ("linear", "mlp", "lstm")
    for shared in (False, True)
    for relax in ("softmax", "gumbel")
    for ste in (True, False)
]
COMBO_ARGS = "composition,shared,relaxation,ste"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread (several oversubscribe a shared CPU: tens of times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(
    *,
    rows: int = N,
    dim: int = DIM,
    teacher: torch.Tensor | None = None,
    seed: int = 0,
    emb: dict[str, Any] | None = None,
    **kd: Any,
) -> KdEmbedding:
    """A KD layer with tiny defaults; ``kd`` overrides :class:`KdConfig` keys."""
    torch.manual_seed(seed)
    kd_cfg = {"K": K, "D": D, "code_dim": DP, "temperature": TAU, **kd}
    config = EmbeddingConfig.model_validate({"kind": "kd", "kd": kd_cfg, **(emb or {})})
    return KdEmbedding(num_rows=rows, dim=dim, config=config, teacher=teacher)


def combo(composition: str, shared: bool, relaxation: str, ste: bool, **kd: Any) -> KdEmbedding:
    return make(
        composition=composition,
        shared_codebook=shared,
        relaxation=relaxation,
        straight_through=ste,
        **kd,
    )


def _linear(layer: object, x: torch.Tensor) -> torch.Tensor:
    assert isinstance(layer, nn.Linear)
    return layer.weight @ x + layer.bias


def compose_oracle(layer: KdEmbedding, vectors: list[torch.Tensor]) -> torch.Tensor:
    """``f(e_1, ..., e_D)`` for one row by the explicit formula; ``vectors``: D tensors (d',)."""
    kd, comp = layer.kd, cast(Any, layer.compose)
    if kd.composition in ("linear", "mlp"):
        pooled = torch.zeros(kd.code_dim)
        for e in vectors:
            pooled = pooled + e
        if kd.reduce == "mean":
            pooled = pooled / len(vectors)
        if kd.composition == "linear":
            return _linear(comp.proj, pooled)
        return _linear(comp.out, torch.tanh(_linear(comp.proj, pooled)))
    lstm = comp.lstm  # nn.LSTM (Any: its weights are attributes)
    h = torch.zeros(kd.code_dim)
    c = torch.zeros(kd.code_dim)
    states = []
    for x in vectors:  # torch gate order: input, forget, cell, output
        gates = lstm.weight_ih_l0 @ x + lstm.bias_ih_l0 + lstm.weight_hh_l0 @ h + lstm.bias_hh_l0
        i, f, g, o = gates.chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        states.append(h)
    mean = torch.zeros(kd.code_dim)
    for h in states:
        mean = mean + h
    return _linear(comp.proj, mean / len(states))


def logits_oracle(layer: KdEmbedding) -> torch.Tensor:
    """``pi (N, D, K)``: the free logits, or the encoder of the teacher rows by formula."""
    kd = layer.kd
    if not kd.autoencode:
        return layer.logits.detach().clone()
    first, _, second = cast(nn.Sequential, layer.encoder)
    out = [
        _linear(second, torch.tanh(_linear(first, layer.teacher[i]))).view(kd.D, kd.K)
        for i in range(layer.num_rows)
    ]
    return torch.stack(out).detach()


def book_of(layer: KdEmbedding, j: int) -> torch.Tensor:
    """``W^j`` ``(K, d')``."""
    return layer.codebook[0 if layer.kd.shared_codebook else j]


@torch.no_grad()
def dense_oracle(layer: KdEmbedding) -> torch.Tensor:
    """The hard table ``(N, d)``, row by row: ``f(W^1[argmax pi_i1], ..., W^D[argmax pi_iD])``."""
    logits = logits_oracle(layer)
    table = []
    for i in range(layer.num_rows):
        vectors = []
        for j in range(layer.kd.D):
            k = int(torch.argmax(logits[i, j]))
            vectors.append(book_of(layer, j)[k])
        table.append(compose_oracle(layer, vectors))
    return torch.stack(table)


def close(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-5) -> None:
    """``|actual - expected| <= tol (1 + |expected|)`` elementwise, same shape and dtype
    (``torch.testing.assert_close`` costs ~1 s of lazy imports on its first call)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    error = (actual.detach() - expected.detach()).abs()
    bound = tol * (1 + expected.detach().abs())
    assert bool(torch.all(error <= bound)), f"max error {float(error.max())}"


# -- shapes and the eval-mode oracle ----------------------------------------------------------
SHAPES = [(), (0,), (7,), (2, 3), (2, 0, 4), (2, 3, 4)]


@pytest.mark.parametrize(COMBO_ARGS, COMBOS)
def test_output_shapes_any_index_shape(
    composition: str, shared: bool, relaxation: str, ste: bool
) -> None:
    layer = combo(composition, shared, relaxation, ste)
    gen = torch.Generator().manual_seed(1)
    for training in (True, False):
        layer.train(training)
        for shape in SHAPES:
            idx = torch.randint(0, N, shape, generator=gen)
            assert layer(idx).shape == (*shape, DIM)
    assert layer.all().shape == (N, DIM)
    assert layer.codes().shape == (N, D) and layer.codes().dtype == torch.int64


@pytest.mark.parametrize(COMBO_ARGS, COMBOS)
def test_eval_equals_dense_oracle(
    composition: str, shared: bool, relaxation: str, ste: bool
) -> None:
    layer = combo(composition, shared, relaxation, ste).eval()
    table = dense_oracle(layer)
    close(layer.all(), table)
    close(layer.lookup_all(), table)
    idx = torch.randint(0, N, (4, 6), generator=torch.Generator().manual_seed(2))
    close(layer(idx), table[idx])
    close(layer.lookup(idx), table[idx])
    codes = layer.codes()
    assert torch.equal(codes, logits_oracle(layer).argmax(-1))


@pytest.mark.parametrize("composition", ["linear", "mlp"])
def test_eval_mean_reduce_and_mlp_hidden_equal_oracle(composition: str) -> None:
    layer = make(composition=composition, reduce="mean", hidden=7).eval()
    close(layer.all(), dense_oracle(layer))


def test_autoencode_eval_equals_oracle_and_logits_follow_teacher() -> None:
    teacher = torch.randn(N, DIM)
    layer = make(guidance="pdg", autoencode=True, teacher=teacher, composition="lstm").eval()
    assert not hasattr(layer, "logits")
    close(layer.all(), dense_oracle(layer))
    rows = torch.arange(N)
    before = layer.code_logits(rows).detach().clone()
    close(before, logits_oracle(layer))
    with torch.no_grad():
        layer.teacher[2] += 1.0
    after = layer.code_logits(rows).detach()
    assert not torch.equal(after[2], before[2])
    keep = rows != 2
    assert torch.equal(after[keep], before[keep])


# -- training mode: STE / soft forward and gradients -------------------------------------------
def _oracle_training_step(
    layer: KdEmbedding, rows: torch.Tensor, g_rows: torch.Tensor, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Independent training-mode forward of the sorted unique ``rows (U,)`` and the gradients
    of ``<g_rows, v>`` w.r.t. the rows' logits and the codebook.

    Gumbel noise is reproduced from the seed (one ``rand`` of shape ``(U, D, K)``, the only draw
    of a forward without SSE or dropout). With STE the value uses the hard one-hot codes and the
    logits get ``d<g, v>/d e`` at the hard ``e`` pulled back through the soft weights.
    """
    kd = layer.kd
    logits = layer.logits.detach()[rows].clone().requires_grad_(True)  # (U, D, K)
    book_leaf = layer.codebook.detach().clone().requires_grad_(True)
    torch.manual_seed(seed)
    perturbed = logits
    if kd.relaxation == "gumbel":
        u = torch.rand(len(rows), kd.D, kd.K).clamp(1e-10, 1.0)
        perturbed = logits - torch.log(-torch.log(u))
    soft = torch.softmax(perturbed / float(layer.temperature), dim=-1)  # (U, D, K)
    weights = F.one_hot(soft.argmax(-1), kd.K).float() if kd.straight_through else soft
    book = [book_leaf[0 if kd.shared_codebook else j] for j in range(kd.D)]
    e = torch.stack([weights[:, j] @ book[j] for j in range(kd.D)], dim=1)  # (U, D, d')
    v = torch.stack([compose_oracle(layer, list(e[b])) for b in range(len(rows))])  # (U, d)
    loss = (v * g_rows).sum()
    if kd.straight_through:
        grad_e, grad_book = torch.autograd.grad(loss, [e, book_leaf])
        dweights = torch.stack([grad_e[:, j] @ book[j].T for j in range(kd.D)], dim=1)  # (U,D,K)
        (grad_logits,) = torch.autograd.grad((soft * dweights.detach()).sum(), [logits])
    else:
        grad_logits, grad_book = torch.autograd.grad(loss, [logits, book_leaf])
    return v.detach(), grad_logits, grad_book


@pytest.mark.parametrize(COMBO_ARGS, COMBOS)
def test_training_forward_and_gradients_equal_oracle(
    composition: str, shared: bool, relaxation: str, ste: bool
) -> None:
    layer = combo(composition, shared, relaxation, ste).train()
    idx = torch.tensor([[7, 1, 4], [0, 8, 3]])  # distinct rows
    g = torch.randn(2, 3, DIM, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(11)
    out = layer(idx)
    (out * g).sum().backward()
    rows, order = idx.reshape(-1).sort()
    g_rows = g.reshape(-1, DIM)[order]
    v, grad_logits, grad_book = _oracle_training_step(layer, rows, g_rows, seed=11)
    close(out.reshape(-1, DIM)[order], v)
    assert layer.logits.grad is not None and layer.codebook.grad is not None
    close(layer.logits.grad[rows], grad_logits)
    assert grad_logits.abs().sum() > 0
    untouched = torch.ones(N, dtype=torch.bool)
    untouched[rows] = False
    assert torch.all(layer.logits.grad[untouched] == 0)
    close(layer.codebook.grad, grad_book)


@pytest.mark.parametrize("composition", ["linear", "mlp", "lstm"])
def test_ste_softmax_forward_equals_eval_value(composition: str) -> None:
    layer = make(composition=composition, straight_through=True)
    idx = torch.randint(0, N, (3, 5), generator=torch.Generator().manual_seed(4))
    train_out = layer.train()(idx)
    close(train_out, layer.eval()(idx))
    close(train_out, dense_oracle(layer)[idx])


def test_ste_linear_gradient_is_soft_path_gradient_analytically() -> None:
    """Linear composition: ``d<g, v>/d pi`` with STE equals the gradient of
    ``<g, P sum_j softmax(pi_j / tau) W^j + b>`` (the soft path; linear, so the point where the
    upstream gradient is taken does not matter) and a layer without STE computes the same."""
    ste = make(straight_through=True).train()
    soft_layer = make(straight_through=False).train()
    soft_layer.load_state_dict(ste.state_dict())
    idx = torch.tensor([2, 5, 5, 8])  # a duplicate: its gradient is summed
    g = torch.randn(4, DIM, generator=torch.Generator().manual_seed(5))
    for layer in (ste, soft_layer):
        (layer(idx) * g).sum().backward()
    logits = ste.logits.detach().clone().requires_grad_(True)
    proj = cast(nn.Linear, ste.compose.proj)
    total = torch.zeros(())
    for b, i in enumerate(idx.tolist()):
        soft = torch.softmax(logits[i] / TAU, dim=-1)  # (D, K)
        pooled = torch.zeros(DP)
        for j in range(D):
            pooled = pooled + soft[j] @ ste.codebook[j].detach()
        total = total + g[b] @ _linear(proj, pooled)
    (expected,) = torch.autograd.grad(total, [logits])
    assert ste.logits.grad is not None and soft_layer.logits.grad is not None
    close(ste.logits.grad, expected)
    close(soft_layer.logits.grad, expected)


@pytest.mark.parametrize("composition", ["linear", "mlp", "lstm"])
def test_soft_forward_equals_softmax_mixture(composition: str) -> None:
    layer = make(composition=composition, straight_through=False).train()
    idx = torch.tensor([[1, 6], [6, 0]])
    logits = layer.logits.detach()
    table = {}
    for i in set(idx.reshape(-1).tolist()):
        soft = torch.softmax(logits[i] / TAU, dim=-1)  # (D, K)
        vectors = [soft[j] @ book_of(layer, j).detach() for j in range(D)]
        table[i] = compose_oracle(layer, vectors).detach()
    expected = torch.stack([table[i] for i in idx.reshape(-1).tolist()]).view(2, 2, DIM)
    close(layer(idx), expected)
    assert not torch.allclose(layer(idx), layer.eval()(idx), atol=1e-3)  # really soft


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
    assert EMBEDDING_LAYERS["kd"] is KdEmbedding
    teacher = torch.randn(N, DIM)
    config = EmbeddingConfig.model_validate(
        {"kind": "kd", "kd": {"K": K, "D": D, "code_dim": DP, "guidance": "pdg"}}
    )
    layer = build_embedding(num_rows=N, dim=DIM, config=config, teacher=teacher)
    assert isinstance(layer, KdEmbedding)
    assert torch.equal(layer.teacher, teacher)
    assert set(layer.training_only_parameters()) == {"logits", "teacher", "temperature"}
