"""ALS / GRALS half-steps against naive solves, monotone objective, fitting, graph smoothing."""

from __future__ import annotations

import pytest
import torch

from embedlab.embeddings.graph import RowGraph
from embedlab.recsys import als, linalg
from embedlab.recsys.als import als_epoch, als_half_step, als_objective
from embedlab.recsys.config import MfConfig
from embedlab.recsys.model import MatrixFactorization


def _model(num_users: int, num_items: int, *, dim: int = 3, biases: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    cfg = MfConfig.model_validate({"model": {"dim": dim, "biases": biases}})
    model = MatrixFactorization(num_users=num_users, num_items=num_items, config=cfg).double()
    model.user_bias.data.normal_(0.0, 0.3)
    model.item_bias.data.normal_(0.0, 0.3)
    return model


def _ratings(
    num_users: int, num_items: int, num: int, *, seed: int = 0, empty_user: int | None = None
):
    """``num`` distinct random (user, item) pairs with float64 ratings in [1, 5]."""
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randperm(num_users * num_items, generator=gen)[:num]
    users, items = keys // num_items, keys % num_items
    if empty_user is not None:
        keep = users != empty_user
        users, items = users[keep], items[keep]
    ratings = 1.0 + 4.0 * torch.rand(users.numel(), generator=gen, dtype=torch.float64)
    return users, items, ratings


def _naive_user_solve(model, users, items, ratings, lam):
    """Per-user loop over the normal equations ``(F_uᵀ F_u + λ n_u I) x_u = F_uᵀ t_u``."""
    Q, bi, mean = model.items.weight.data, model.item_bias.data, model.mean
    d = Q.shape[1]
    k = d + 1 if model.biases else d
    out = torch.zeros(model.users.weight.shape[0], k, dtype=torch.float64)
    for u in range(out.shape[0]):
        sel = users == u
        if not sel.any():
            continue
        feats = Q[items[sel]]
        target = ratings[sel] - mean
        if model.biases:
            feats = torch.cat([feats, torch.ones(feats.shape[0], 1, dtype=torch.float64)], 1)
            target = target - bi[items[sel]]
        a = feats.T @ feats + lam * int(sel.sum()) * torch.eye(k, dtype=torch.float64)
        out[u] = torch.linalg.solve(a, feats.T @ target)
    return out


@pytest.mark.parametrize("biases", [True, False])
def test_user_half_step_matches_per_user_loop(biases):
    users, items, ratings = _ratings(7, 9, 30, empty_user=4)
    model = _model(7, 9, biases=biases)
    model.mean.fill_(float(ratings.mean()))
    expected = _naive_user_solve(model, users, items, ratings, lam=0.3)
    als_half_step(model, side="users", users=users, items=items, ratings=ratings, weight_decay=0.3)
    torch.testing.assert_close(model.users.weight.data, expected[:, :3], rtol=1e-10, atol=1e-12)
    if biases:
        torch.testing.assert_close(model.user_bias.data, expected[:, 3], rtol=1e-10, atol=1e-12)
    assert model.users.weight.data[4].abs().max() == 0  # no ratings -> zero


def test_item_half_step_is_the_user_step_transposed():
    users, items, ratings = _ratings(7, 9, 30, seed=1)
    model = _model(7, 9)
    swapped = _model(9, 7)
    swapped.users.weight.data.copy_(model.items.weight.data)
    swapped.user_bias.data.copy_(model.item_bias.data)
    swapped.items.weight.data.copy_(model.users.weight.data)
    swapped.item_bias.data.copy_(model.user_bias.data)
    common = {"ratings": ratings, "weight_decay": 0.1}
    als_half_step(model, side="items", users=users, items=items, **common)
    als_half_step(swapped, side="users", users=items, items=users, **common)
    torch.testing.assert_close(model.items.weight.data, swapped.users.weight.data)
    torch.testing.assert_close(model.item_bias.data, swapped.user_bias.data)


def _naive_grals_user_solve(model, users, items, ratings, lam, lap, lam_graph):
    """Dense direct solve of the whole ``(U k)``-dim user system, built entry by entry."""
    Q, bi, mean = model.items.weight.data, model.item_bias.data, model.mean
    num_users, d = model.users.weight.shape
    k = d + 1
    a = torch.zeros(num_users * k, num_users * k, dtype=torch.float64)
    b = torch.zeros(num_users * k, dtype=torch.float64)
    for u, i, r in zip(users.tolist(), items.tolist(), ratings.tolist(), strict=True):
        f = torch.cat([Q[i], torch.ones(1, dtype=torch.float64)])
        a[u * k : (u + 1) * k, u * k : (u + 1) * k] += torch.outer(f, f)
        a[u * k : (u + 1) * k, u * k : (u + 1) * k] += lam * torch.eye(k, dtype=torch.float64)
        b[u * k : (u + 1) * k] += (r - float(mean) - bi[i]) * f
    dense = lap.to_dense().double()
    for u in range(num_users):
        for v in range(num_users):
            for c in range(d):  # factors only, not the bias coordinate
                a[u * k + c, v * k + c] += lam_graph * dense[u, v]
    dead = a.diagonal() == 0  # coordinates absent from J (bias of a user without ratings)
    a[dead, dead] = 1.0
    return torch.linalg.solve(a, b).view(num_users, k)


def test_grals_cg_half_step_matches_dense_direct_solve(monkeypatch):
    users, items, ratings = _ratings(6, 8, 25, seed=2, empty_user=5)  # user 5: graph only
    graph = RowGraph.from_edges(
        num_rows=6, src=torch.tensor([0, 1, 2, 3, 5]), dst=torch.tensor([1, 2, 0, 4, 0])
    )
    lap = graph.laplacian()
    model = _model(6, 8, dim=3)
    model.mean.fill_(float(ratings.mean()))
    expected = _naive_grals_user_solve(model, users, items, ratings, 0.2, lap, 0.7)
    for tolerance in (als.CG_TOLERANCE, 1e-13):
        monkeypatch.setattr(linalg, "CG_TOLERANCE", tolerance)  # pcg reads it there
        trial = _model(6, 8, dim=3)
        trial.mean.fill_(float(ratings.mean()))
        info = als_half_step(
            trial, side="users", users=users, items=items, ratings=ratings, weight_decay=0.2,
            laplacian=(lap, 0.7), cg_iterations=100,
        )  # fmt: skip
        got = torch.cat([trial.users.weight.data, trial.user_bias.data.unsqueeze(1)], 1)
        error = float((got - expected).norm() / expected.norm())
        assert info.relative_residual <= tolerance
        assert error <= 10 * tolerance, (tolerance, error, info)
    assert got[5, :3].abs().min() > 0 and got[5, 3] == 0  # factors from the graph, bias pinned


@pytest.mark.parametrize("graph", [False, True])
def test_objective_never_increases(graph):
    users, items, ratings = _ratings(20, 15, 120, seed=3)
    model = _model(20, 15, dim=4)
    model.mean.fill_(float(ratings.mean()))
    laps = {"users": None, "items": None}
    if graph:
        gen = torch.Generator().manual_seed(3)
        for side, n in (("users", 20), ("items", 15)):
            src, dst = torch.randint(n, (2, 3 * n), generator=gen)
            laps[side] = (RowGraph.from_edges(num_rows=n, src=src, dst=dst).laplacian(), 2.0)
    common = {"users": users, "items": items, "ratings": ratings, "weight_decay": 0.05}
    obj = als_objective(model, user_laplacian=laps["users"], item_laplacian=laps["items"], **common)
    for _ in range(6):
        for side in ("users", "items"):
            # 3 CG steps: far from converged, still monotone
            als_half_step(model, side=side, laplacian=laps[side], cg_iterations=3, **common)
            new = als_objective(
                model, user_laplacian=laps["users"], item_laplacian=laps["items"], **common
            )
            assert new <= obj * (1 + 1e-12), (side, obj, new)
            obj = new
    epoch_obj = als_epoch(
        model, user_laplacian=laps["users"], item_laplacian=laps["items"], **common
    )
    assert epoch_obj <= obj * (1 + 1e-12)


def test_als_fits_noiseless_low_rank_matrix():
    gen = torch.Generator().manual_seed(4)
    num_users, num_items, rank = 30, 20, 3
    truth = 3.0 + torch.randn(num_users, rank, generator=gen, dtype=torch.float64) @ torch.randn(
        rank, num_items, generator=gen, dtype=torch.float64
    )
    users = torch.arange(num_users).repeat_interleave(num_items)
    items = torch.arange(num_items).repeat(num_users)
    ratings = truth.reshape(-1)
    model = _model(num_users, num_items, dim=rank)
    model.mean.fill_(float(ratings.mean()))
    for _ in range(15):  # converges in ~5 epochs
        als_epoch(model, users=users, items=items, ratings=ratings, weight_decay=1e-10)
    rmse = float((model.predict(users, items) - ratings).square().mean().sqrt())
    assert rmse < 1e-6


def test_laplacian_pulls_connected_users_together():
    users, items, ratings = _ratings(8, 12, 60, seed=5)
    graph = RowGraph.from_edges(num_rows=8, src=torch.tensor([0, 1]), dst=torch.tensor([1, 2]))
    lap = (graph.laplacian(), 1e6)
    model = _model(8, 12, dim=3)
    model.mean.fill_(float(ratings.mean()))
    for _ in range(5):
        als_epoch(
            model, users=users, items=items, ratings=ratings, weight_decay=0.05,
            user_laplacian=lap, cg_iterations=100,
        )  # fmt: skip
    P = model.users.weight.data
    scale = float(P.norm(dim=1).mean())
    spread = float((P[:3] - P[:3].mean(0)).norm(dim=1).max())
    assert spread < 1e-4 * scale
    others = float((P[3:] - P[3:].mean(0)).norm(dim=1).max())  # unconnected users stay apart
    assert others > 0.1 * scale
