"""KdEmbedding (paper 003): oracle tests against explicit formulas written row by row.

Every composition (linear / mlp / lstm), shared or per-position codebooks, softmax or Gumbel
relaxation, STE on or off. The dense oracle builds the table with a python loop (for each row i
and position j: ``W^j[argmax pi_ij]``, then the composition by its formula; the LSTM is run cell
by cell from ``torch.nn.LSTM``'s weights). Gradients are compared with autograd through an
independent soft/hard path. Statistical tests are seeded and use significance 1e-3.
"""

from __future__ import annotations

from typing import cast

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from embedlab.embeddings import KdEmbedding
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
