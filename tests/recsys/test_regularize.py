"""The tables' ``regularize`` penalty in SGD-MF and ALS/GRALS, against oracles written here.

SGD: batch of one == a per-rating loop; one batch == autograd on the batch objective built from
the KGE code itself (``EmbeddingTable.penalty``); weight 0 == no penalty, bit for bit. ALS: an
``lp`` p = 2 half-step == a naive per-row (or dense GRALS) ridge solve; SGD and ALS share J;
other p and ``n3`` are refused.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from embedlab.embeddings.config import RegularizeConfig
from embedlab.embeddings.graph import RowGraph
from embedlab.recsys import linalg
from embedlab.recsys.als import als_epoch, als_half_step, als_objective, check_als_penalty
from embedlab.recsys.config import MfConfig
from embedlab.recsys.model import MatrixFactorization
from embedlab.recsys.sgd import sgd_epoch

F64 = torch.float64


def _reg(kind: str = "lp", weight: float = 0.3, p: int = 2, weighted: bool = False):
    return RegularizeConfig.model_validate(
        {"kind": kind, "weight": weight, "p": p, "weighted": weighted}
    )


def _model(
    users: int = 7,
    items: int = 9,
    *,
    dim: int = 4,
    biases: bool = True,
    regs: tuple[RegularizeConfig, RegularizeConfig] | None = None,
    sse: float = 0.0,
    dropout: float = 0.0,
) -> MatrixFactorization:
    tables: dict[str, Any] = {}
    for key, reg in zip(("user_embedding", "item_embedding"), regs or (None, None), strict=True):
        tables[key] = {"dropout": dropout}
        if reg is not None:
            tables[key]["regularize"] = reg.model_dump()
        if sse > 0:
            tables[key]["sse"] = {"kind": "se", "p": sse}
    cfg = MfConfig.model_validate({"model": {"dim": dim, "biases": biases}, **tables})
    torch.manual_seed(1)
    m = MatrixFactorization(num_users=users, num_items=items, config=cfg).double()
    m.users.weight.data.normal_(0.0, 0.5)  # visible |x|^p terms
    m.items.weight.data.normal_(0.0, 0.5)
    m.user_bias.data.normal_(0.0, 0.3)
    m.item_bias.data.normal_(0.0, 0.3)
    m.mean.fill_(3.0)
    return m


def _ratings(users: int = 7, items: int = 9, n: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, users, (n,), generator=g)
    i = torch.randint(0, items, (n,), generator=g)
    return u, i, 1.0 + 4.0 * torch.rand(n, generator=g, dtype=F64)


def _grad_lp(x: torch.Tensor, p: int) -> torch.Tensor:
    """d/dx |x|^p / p, written out."""
    return torch.sign(x) * x.abs() ** (p - 1)


def _power(reg: RegularizeConfig) -> int:
    return 3 if reg.kind == "n3" else reg.p


def _naive_epoch(m, u, i, r, order, lr, lam, regs) -> None:
    """Per-rating SGD with the penalty's step: ``-lr w ∇ pen(p_u)`` (weighted) or
    ``-lr w ∇ Σ_all pen`` (unweighted; B = 1), every term at the parameters before the rating."""
    P, Q, bu, bi = m.users.weight.data, m.items.weight.data, m.user_bias.data, m.item_bias.data
    for k in order.tolist():
        a, b = int(u[k]), int(i[k])
        P0, Q0, bu0, bi0 = P.clone(), Q.clone(), bu.clone(), bi.clone()
        err = float(r[k]) - (3.0 + float(bu0[a]) + float(bi0[b]) + float(P0[a] @ Q0[b]))
        bu[a] += lr * (err - lam * bu0[a])
        bi[b] += lr * (err - lam * bi0[b])
        P[a] += lr * (err * Q0[b] - lam * P0[a])
        Q[b] += lr * (err * P0[a] - lam * Q0[b])
        for table, old, row, reg in ((P, P0, a, regs[0]), (Q, Q0, b, regs[1])):
            if reg.kind == "none":
                continue
            if reg.weighted:
                table[row] -= lr * reg.weight * _grad_lp(old[row], _power(reg))
            else:
                table -= lr * reg.weight * _grad_lp(old, _power(reg))


SGD_CASES = [
    (_reg(weighted=True), _reg(weighted=True, weight=0.2)),
    (_reg(weight=0.01), _reg(weight=0.02)),
    (_reg(kind="n3", weighted=True), _reg(kind="n3", weight=0.01)),
    (_reg(p=1, weight=0.05, weighted=True), _reg(p=3, weight=0.02)),
    (_reg(kind="none"), _reg(p=4, weight=0.1, weighted=True)),
]


@pytest.mark.parametrize("regs", SGD_CASES)
def test_sgd_batch_of_one_equals_per_rating_loop(regs) -> None:
    u, i, r = _ratings()
    fast, slow = _model(), _model()
    sgd_epoch(fast, users=u, items=i, ratings=r, lr=0.05, weight_decay=0.1, batch_size=1,
              generator=torch.Generator().manual_seed(5), penalties=regs)  # fmt: skip
    order = torch.randperm(u.numel(), generator=torch.Generator().manual_seed(5))
    _naive_epoch(slow, u, i, r, order, 0.05, 0.1, regs)
    plain = _model()
    sgd_epoch(plain, users=u, items=i, ratings=r, lr=0.05, weight_decay=0.1, batch_size=1,
              generator=torch.Generator().manual_seed(5))  # fmt: skip
    assert not torch.allclose(fast.users.weight, plain.users.weight)  # the penalty acted
    for a, b in zip(fast.parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("regs", SGD_CASES)
def test_sgd_batch_equals_autograd_on_kge_penalty(regs) -> None:
    """One batch of B ratings with SSE on: ``θ - lr ∇ [Σ ½ e² + ½ λ |·|² on the SSE rows
    + B (users.penalty(u) + items.penalty(i))]``, the penalties on the rows before SSE."""
    u, i, r = _ratings(seed=1)
    lr, lam, n = 0.02, 0.1, u.numel()
    fast, ref = _model(regs=regs, sse=0.5), _model(regs=regs, sse=0.5)
    torch.manual_seed(7)
    sgd_epoch(fast, users=u, items=i, ratings=r, lr=lr, weight_decay=lam, batch_size=1000,
              generator=torch.Generator().manual_seed(5), penalties=regs)  # fmt: skip
    order = torch.randperm(n, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(7)
    ref.train()
    u_o, i_o = u[order], i[order]
    u_e, i_e = ref.users.transform_indices(u_o), ref.items.transform_indices(i_o)
    assert bool((u_e != u_o).any()) and bool((i_e != i_o).any())
    params = list(ref.parameters())
    for x in params:
        x.requires_grad_(True)
    P, Q, bu, bi = ref.users.weight, ref.items.weight, ref.user_bias, ref.item_bias
    pu, qi, bu_e, bi_e = P[u_e], Q[i_e], bu[u_e], bi[i_e]
    err = r[order] - (ref.mean + bu_e + bi_e + (pu * qi).sum(1))
    ridge = pu.square().sum() + qi.square().sum() + bu_e.square().sum() + bi_e.square().sum()
    loss = 0.5 * err.square().sum() + 0.5 * lam * ridge
    loss = loss + n * (ref.users.penalty(u_o) + ref.items.penalty(i_o))
    loss.backward()
    for a, b in zip(fast.parameters(), params, strict=True):
        assert b.grad is not None
        torch.testing.assert_close(a.detach(), (b - lr * b.grad).detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "regs",
    [
        (_reg(weight=0.0), _reg(weight=0.0, weighted=True)),
        (_reg(kind="n3", weight=0.0), _reg(p=3, weight=0.0)),
        (_reg(kind="none", weight=0.5), _reg(kind="none", weight=0.5, weighted=True)),
    ],
)
def test_sgd_zero_penalty_is_no_penalty_bit_for_bit(regs) -> None:
    u, i, r = _ratings(seed=2)
    runs = []
    for penalties in (None, regs):
        m = _model(sse=0.2, dropout=0.1)
        torch.manual_seed(3)
        for _ in range(2):
            sgd_epoch(m, users=u, items=i, ratings=r, lr=0.05, weight_decay=0.1, batch_size=8,
                      generator=torch.Generator().manual_seed(4), penalties=penalties)  # fmt: skip
        runs.append([x.detach().clone() for x in m.parameters()])
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)


def test_sgd_weighted_l2_is_surprise_weight_decay_on_the_factors() -> None:
    u, i, r = _ratings(seed=3)
    decay, penal = _model(biases=False), _model(biases=False)
    common: dict[str, Any] = {"users": u, "items": i, "ratings": r, "lr": 0.05, "batch_size": 6}
    sgd_epoch(decay, weight_decay=0.2, generator=torch.Generator().manual_seed(0), **common)
    sgd_epoch(penal, weight_decay=0.0, generator=torch.Generator().manual_seed(0),
              penalties=(_reg(weight=0.2, weighted=True),) * 2, **common)  # fmt: skip
    for a, b in zip(decay.parameters(), penal.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- ALS / GRALS


def _rho(reg: RegularizeConfig, n_rows: torch.Tensor, num_ratings: int) -> torch.Tensor:
    """ρ per row: w n_u (weighted) or w R (unweighted)."""
    return reg.weight * (n_rows if reg.weighted else torch.full_like(n_rows, num_ratings)).double()


def _naive_user_ridge_solve(m, users, items, ratings, lam, reg):
    """Per user: ``(F_uᵀ F_u + λ n_u I + ρ_u I_d') x_u = F_uᵀ t_u`` by ``torch.linalg.solve``."""
    Q, bi = m.items.weight.data, m.item_bias.data
    d = Q.shape[1]
    k = d + 1 if m.biases else d
    n_u = torch.bincount(users, minlength=m.users.weight.shape[0])
    rho = _rho(reg, n_u, users.numel())
    out = torch.zeros(n_u.numel(), k, dtype=F64)
    for u in range(n_u.numel()):
        sel = users == u
        if not sel.any():
            continue  # no data: J's minimizer over x_u is 0
        feats, target = Q[items[sel]], ratings[sel] - m.mean
        if m.biases:
            feats = torch.cat([feats, torch.ones(feats.shape[0], 1, dtype=F64)], 1)
            target = target - bi[items[sel]]
        diag = torch.full((k,), lam * int(sel.sum()), dtype=F64)
        diag[:d] += rho[u]
        out[u] = torch.linalg.solve(feats.T @ feats + torch.diag(diag), feats.T @ target)
    return out


@pytest.mark.parametrize("biases", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
def test_als_l2_penalty_equals_naive_ridge_solve(biases, weighted) -> None:
    users, items, ratings = _ratings(7, 9, 30, seed=4)
    keep = users != 4  # user 4 without ratings
    users, items, ratings = users[keep], items[keep], ratings[keep]
    reg = _reg(weight=0.7 if weighted else 0.02, weighted=weighted)
    m = _model(7, 9, dim=3, biases=biases)
    expected = _naive_user_ridge_solve(m, users, items, ratings, 0.3, reg)
    plain = _naive_user_ridge_solve(m, users, items, ratings, 0.3, _reg(weight=0.0))
    assert (expected - plain).abs().max() > 1e-3  # the penalty matters
    als_half_step(m, side="users", users=users, items=items, ratings=ratings, weight_decay=0.3,
                  penalty=reg)  # fmt: skip
    torch.testing.assert_close(m.users.weight.data, expected[:, :3], rtol=1e-10, atol=1e-12)
    if biases:
        torch.testing.assert_close(m.user_bias.data, expected[:, 3], rtol=1e-10, atol=1e-12)


def _dense_grals_user_solve(m, users, items, ratings, lam, lap, lam_graph, reg):
    """The whole ``(U k)`` user system with ρ on every row's factors, solved densely."""
    Q, bi = m.items.weight.data, m.item_bias.data
    num_users, d = m.users.weight.shape
    k = d + 1
    rho = _rho(reg, torch.bincount(users, minlength=num_users), users.numel())
    a = torch.zeros(num_users * k, num_users * k, dtype=F64)
    b = torch.zeros(num_users * k, dtype=F64)
    for u, i, r in zip(users.tolist(), items.tolist(), ratings.tolist(), strict=True):
        f = torch.cat([Q[i], torch.ones(1, dtype=F64)])
        block = torch.outer(f, f) + lam * torch.eye(k, dtype=F64)
        a[u * k : (u + 1) * k, u * k : (u + 1) * k] += block
        b[u * k : (u + 1) * k] += (r - float(m.mean) - bi[i]) * f
    dense = lap.to_dense().double()
    for u in range(num_users):
        for c in range(d):
            a[u * k + c, u * k + c] += rho[u]
            for v in range(num_users):
                a[u * k + c, v * k + c] += lam_graph * dense[u, v]
    dead = a.diagonal() == 0
    a[dead, dead] = 1.0
    return torch.linalg.solve(a, b).view(num_users, k)


@pytest.mark.parametrize("weighted", [True, False])
def test_grals_l2_penalty_equals_dense_solve(monkeypatch, weighted) -> None:
    users, items, ratings = _ratings(6, 8, 25, seed=5)
    keep = users != 5  # user 5: graph and ρ only
    users, items, ratings = users[keep], items[keep], ratings[keep]
    graph = RowGraph.from_edges(
        num_rows=6, src=torch.tensor([0, 1, 2, 3, 5]), dst=torch.tensor([1, 2, 0, 4, 0])
    )
    lap = graph.laplacian()
    reg = _reg(weight=0.5 if weighted else 0.01, weighted=weighted)
    m = _model(6, 8, dim=3)
    expected = _dense_grals_user_solve(m, users, items, ratings, 0.2, lap, 0.7, reg)
    monkeypatch.setattr(linalg, "CG_TOLERANCE", 1e-13)
    als_half_step(m, side="users", users=users, items=items, ratings=ratings, weight_decay=0.2,
                  laplacian=(lap, 0.7), cg_iterations=200, penalty=reg)  # fmt: skip
    got = torch.cat([m.users.weight.data, m.user_bias.data.unsqueeze(1)], 1)
    assert float((got - expected).norm() / expected.norm()) < 1e-11


@pytest.mark.parametrize("weighted", [True, False])
def test_als_objective_is_twice_the_sgd_objective(weighted) -> None:
    """J's directional derivative (exact central difference: J is quadratic in one table) equals
    ``-2 / lr`` times a full-batch SGD step along it; and ALS epochs never increase J."""
    users, items, ratings = _ratings(8, 10, 50, seed=6)
    regs = (_reg(weight=0.4 if weighted else 0.01, weighted=weighted),) * 2
    lr, lam = 1e-3, 0.05
    m = _model(8, 10, dim=3)
    common: dict[str, Any] = {"users": users, "items": items, "ratings": ratings}
    stepped = _model(8, 10, dim=3)
    sgd_epoch(stepped, lr=lr, weight_decay=lam, batch_size=1000, penalties=regs,
              generator=torch.Generator().manual_seed(0), **common)  # fmt: skip
    g = torch.Generator().manual_seed(1)
    for table, moved in ((m.users.weight, stepped.users.weight), (m.items.weight, stepped.items.weight)):  # fmt: skip
        v = torch.randn(table.shape, generator=g, dtype=F64)
        h = 1e-3
        base = table.data.clone()
        table.data.copy_(base + h * v)
        up = als_objective(m, weight_decay=lam, penalties=regs, **common)
        table.data.copy_(base - h * v)
        down = als_objective(m, weight_decay=lam, penalties=regs, **common)
        table.data.copy_(base)
        slope = -2.0 / lr * float(((moved.data - base) * v).sum())
        assert (up - down) / (2 * h) == pytest.approx(slope, rel=1e-7)
    obj = als_objective(m, weight_decay=lam, penalties=regs, **common)
    assert obj > als_objective(m, weight_decay=lam, **common)
    for _ in range(4):
        new = als_epoch(m, weight_decay=lam, penalties=regs, **common)
        assert new <= obj * (1 + 1e-12)
        obj = new


@pytest.mark.parametrize(
    ("reg", "key"),
    [
        (_reg(p=3), "user_embedding.regularize.p=3"),
        (_reg(p=1, weighted=True), "user_embedding.regularize.p=1"),
        (_reg(kind="n3"), "user_embedding.regularize.kind=n3"),
    ],
)
def test_als_refuses_penalties_without_closed_form(reg, key) -> None:
    users, items, ratings = _ratings(seed=7)
    m = _model()
    before = [x.detach().clone() for x in m.parameters()]
    common: dict[str, Any] = {"users": users, "items": items, "ratings": ratings}
    assert check_als_penalty(reg, "user_embedding") is not None
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        als_half_step(m, side="users", weight_decay=0.1, penalty=reg, **common)
    with pytest.raises(ValueError, match="item_embedding.regularize"):  # before any update
        als_epoch(m, weight_decay=0.1, penalties=(_reg(), reg), **common)
    for a, b in zip(before, m.parameters(), strict=True):
        assert torch.equal(a, b)


def test_check_als_penalty_accepts_l2_and_off() -> None:
    for reg in (_reg(), _reg(weighted=True), _reg(kind="none", p=3), _reg(kind="n3", weight=0.0)):
        assert check_als_penalty(reg, "item_embedding") is None
    message = check_als_penalty(_reg(kind="n3"), "item_embedding")
    assert message is not None and message.startswith("item_embedding.regularize.kind=n3")
