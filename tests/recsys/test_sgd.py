"""SGD-MF against a per-rating Python loop of Surprise's update rule; metrics by hand."""

from __future__ import annotations

import pytest
import torch

from embedlab.recsys.config import MfConfig
from embedlab.recsys.metrics import rating_metrics
from embedlab.recsys.model import MatrixFactorization
from embedlab.recsys.sgd import sgd_epoch


def _problem(seed: int = 0, users: int = 7, items: int = 9, n: int = 40):
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, users, (n,), generator=g)
    i = torch.randint(0, items, (n,), generator=g)
    r = torch.randint(1, 6, (n,), generator=g).float()
    return u, i, r


def _model(
    users: int = 7, items: int = 9, biases: bool = True, **extra: object
) -> MatrixFactorization:
    cfg = MfConfig.model_validate({"model": {"dim": 4, "biases": biases}, **extra})
    torch.manual_seed(1)
    m = MatrixFactorization(num_users=users, num_items=items, config=cfg).double()
    m.mean.fill_(3.0)
    return m


def _naive_epoch(m, u, i, r, order, lr, lam) -> None:
    """Surprise's SVD.sgd inner loop, one rating at a time (float64)."""
    P, Q, bu, bi = m.users.weight.data, m.items.weight.data, m.user_bias.data, m.item_bias.data
    for k in order.tolist():
        a, b = int(u[k]), int(i[k])
        est = (
            float(m.mean) + (float(bu[a]) + float(bi[b]) if m.biases else 0.0) + float(P[a] @ Q[b])
        )
        err = float(r[k]) - est
        if m.biases:
            bu[a] += lr * (err - lam * bu[a])
            bi[b] += lr * (err - lam * bi[b])
        pa = P[a].clone()
        P[a] += lr * (err * Q[b] - lam * P[a])
        Q[b] += lr * (err * pa - lam * Q[b])


@pytest.mark.parametrize("biases", [True, False])
def test_batch_of_one_equals_per_rating_loop(biases: bool) -> None:
    u, i, r = _problem()
    fast, slow = _model(biases=biases), _model(biases=biases)
    order = torch.randperm(u.numel(), generator=torch.Generator().manual_seed(5))
    sgd_epoch(fast, users=u, items=i, ratings=r.double(), lr=0.05, weight_decay=0.1, batch_size=1,
              generator=torch.Generator().manual_seed(5))  # fmt: skip
    _naive_epoch(slow, u, i, r, order, 0.05, 0.1)
    for a, b in zip(fast.parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_big_batch_sums_the_per_rating_steps_from_one_point() -> None:
    """A batch applies every rating's step computed at the same parameters (Hogwild sum)."""
    u, i, r = _problem(seed=2)
    fast, ref = _model(), _model()
    lr, lam = 0.05, 0.1
    sgd_epoch(fast, users=u, items=i, ratings=r.double(), lr=lr, weight_decay=lam, batch_size=1000,
              generator=torch.Generator().manual_seed(0))  # fmt: skip
    P, Q, bu, bi = (
        x.detach().clone()
        for x in (ref.users.weight, ref.items.weight, ref.user_bias, ref.item_bias)
    )
    dP, dQ, dbu, dbi = (torch.zeros_like(x) for x in (P, Q, bu, bi))
    for k in range(u.numel()):
        a, b = int(u[k]), int(i[k])
        err = float(r[k]) - (3.0 + float(bu[a] + bi[b]) + float(P[a] @ Q[b]))
        dbu[a] += lr * (err - lam * bu[a])
        dbi[b] += lr * (err - lam * bi[b])
        dP[a] += lr * (err * Q[b] - lam * P[a])
        dQ[b] += lr * (err * P[a] - lam * Q[b])
    torch.testing.assert_close(fast.users.weight.data, P + dP)
    torch.testing.assert_close(fast.items.weight.data, Q + dQ)
    torch.testing.assert_close(fast.user_bias.data, bu + dbu)
    torch.testing.assert_close(fast.item_bias.data, bi + dbi)


def test_sgd_fits_a_low_rank_matrix_with_sse_and_dropout() -> None:
    """Training error falls well below the ratings' variance with every regularizer switched on."""
    g = torch.Generator().manual_seed(3)
    n_users, n_items = 30, 40
    truth = torch.randn(n_users, 2, generator=g) @ torch.randn(2, n_items, generator=g)
    u, i = torch.meshgrid(torch.arange(n_users), torch.arange(n_items), indexing="ij")
    u, i = u.reshape(-1), i.reshape(-1)
    r = (3 + truth[u, i]).float()
    extra = {"user_embedding": {"sse": {"kind": "se", "p": 0.01}, "dropout": 0.05},
             "item_embedding": {"sse": {"kind": "se", "p": 0.01}}}  # fmt: skip
    m = _model(n_users, n_items, **extra).float()
    m.mean.fill_(float(r.mean()))
    losses = [sgd_epoch(m, users=u, items=i, ratings=r, lr=0.02, weight_decay=0.001, batch_size=64,
                        generator=g) for _ in range(60)]  # fmt: skip
    assert losses[-1] < 0.2 * float(r.var())


def test_rating_metrics_by_hand() -> None:
    m = _model(biases=False)
    m.users.weight.data.zero_()
    m.mean.fill_(4.6)  # predictions 4.6 everywhere
    users, items = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2])
    ratings = torch.tensor([5.0, 1.0, 4.0])
    got = rating_metrics(m, users=users, items=items, ratings=ratings, scale=(1.0, 4.5))
    # clipped to 4.5: errors 0.5, -3.5, -0.5
    assert got["rmse"] == pytest.approx(((0.25 + 12.25 + 0.25) / 3) ** 0.5)
    assert got["mae"] == pytest.approx(4.5 / 3)
    with pytest.raises(ValueError, match="no ratings"):
        rating_metrics(m, users=users[:0], items=items[:0], ratings=ratings[:0], scale=(1.0, 5.0))


def test_sgd_updates_the_sse_replaced_rows() -> None:
    """With SSE on both tables, an epoch equals the per-rating loop run on the replaced indices."""
    u, i, r = _problem(seed=4)
    extra = {"user_embedding": {"sse": {"kind": "se", "p": 0.5}},
             "item_embedding": {"sse": {"kind": "se", "p": 0.5}}}  # fmt: skip
    fast, slow = _model(**extra), _model(**extra)
    torch.manual_seed(7)
    sgd_epoch(fast, users=u, items=i, ratings=r.double(), lr=0.05, weight_decay=0.1, batch_size=1,
              generator=torch.Generator().manual_seed(5))  # fmt: skip
    order = torch.randperm(u.numel(), generator=torch.Generator().manual_seed(5))
    torch.manual_seed(7)
    slow.train()
    u_e = slow.users.transform_indices(u[order])
    i_e = slow.items.transform_indices(i[order])
    assert bool((u_e != u[order]).any()) and bool((i_e != i[order]).any())
    _naive_epoch(slow, u_e, i_e, r[order], torch.arange(u.numel()), 0.05, 0.1)
    for a, b in zip(fast.parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(a, b)
