"""KL divergence of ``p(y|x)`` between the training and test triples of a KG (paper 002, §5.2,
figure 2).

The paper's recipe, verbatim: "we first calculated ``p(e_i|r_k, e_j) = p(e_i|r_k) + p(e_j|e_i)`` on
the basis of frequencies in the data then calculated ``p(e_j|r_k, e_i)`` in the same manner. We
treated both as ``p(y|x)``. ``P`` = ``p(y|x)`` on training data, ``Q`` = on test data;
``D_KL(P||Q)``". The sum of two conditionals is not a distribution and ``Q`` from a few thousand
test triples is zero almost everywhere, so :func:`kl_train_test` makes the choices listed in its
docstring to get a finite, well-defined number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from embedlab.datasets.kg import load_kg

DEFAULT_EPSILON = 1e-3
# (y column, given-entity column) of a (head, relation, tail) triple for each query direction
DIRECTIONS = {"head": (0, 2), "tail": (2, 0)}


@dataclass(frozen=True)
class KlResult:
    """KL between training and test ``p(y|x)`` of one dataset (see :func:`kl_train_test`).

    Attributes:
        dataset: name or directory.
        kl: mean ``D_KL(P||Q)`` (nats) over the test (triple, direction) queries kept.
        kl_head: the mean over head queries ``(?, r, t)``; kl_tail: over tail queries ``(h, r, ?)``.
        queries: test (triple, direction) pairs kept (at most twice the number of test triples).
        distinct_queries: distinct ``x`` among them.
        skipped: test (triple, direction) pairs whose training ``P`` is all zero.
        epsilon: smoothing weight of ``Q``.
        num_entities: ``|Y|``.
    """

    dataset: str
    kl: float
    kl_head: float
    kl_tail: float
    queries: int
    distinct_queries: int
    skipped: int
    epsilon: float
    num_entities: int


@dataclass(frozen=True)
class _Stats:
    """Frequency tables of one split for one query direction (``N`` entities, ``R`` relations).

    ``a``: ``(R, N)`` dense ``p(y|r)``, its nonzeros as CSR (``a_crow (R+1,)``, ``a_cols``),
    ``a_sum (R,)`` (1, or 0 for a relation absent from the split), ``a_ent (R,)`` ``sum_y a log a``.
    ``b[g, y] = #(y, g) / #y`` (``#y``: occurrences of ``y`` in its own column), sparse: sorted
    ``b_keys = g N + y``, ``b_vals``, CSR over ``g`` (``b_crow (N+1,)``, ``b_cols``), ``b_sum (N,)``.
    """

    a: torch.Tensor
    a_crow: torch.Tensor
    a_cols: torch.Tensor
    a_sum: torch.Tensor
    a_ent: torch.Tensor
    b_keys: torch.Tensor
    b_vals: torch.Tensor
    b_crow: torch.Tensor
    b_cols: torch.Tensor
    b_sum: torch.Tensor


def _crow(rows: torch.Tensor, size: int) -> torch.Tensor:
    """CSR row offsets ``(size + 1,)`` of sorted row indices."""
    crow = torch.zeros(size + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=size), dim=0)
    return crow


def _stats(triples: torch.Tensor, *, y_col: int, g_col: int, n: int, num_rel: int) -> _Stats:
    r, y, g = triples[:, 1], triples[:, y_col], triples[:, g_col]  # (M,) each
    a = torch.zeros(num_rel, n, dtype=torch.float64, device=triples.device)
    a.index_put_((r, y), torch.ones(len(r), dtype=torch.float64, device=r.device), accumulate=True)
    a /= a.sum(dim=1, keepdim=True).clamp(min=1.0)  # rows of absent relations stay 0
    a_nz = torch.nonzero(a)  # (nnz, 2), row-major order
    y_count = torch.bincount(y, minlength=n).to(torch.float64)  # (N,)
    keys, pair_count = torch.unique(g * n + y, return_counts=True)  # sorted by g, then y
    b_rows, b_cols = keys // n, keys % n
    b_vals = pair_count.to(torch.float64) / y_count[b_cols]
    b_sum = torch.zeros(n, dtype=torch.float64, device=b_vals.device)  # (N,)
    return _Stats(
        a=a,
        a_crow=_crow(a_nz[:, 0], num_rel),
        a_cols=a_nz[:, 1],
        a_sum=a.sum(dim=1),
        a_ent=torch.xlogy(a, a).sum(dim=1),
        b_keys=keys,
        b_vals=b_vals,
        b_crow=_crow(b_rows, n),
        b_cols=b_cols,
        b_sum=b_sum.index_add_(0, b_rows, b_vals),
    )


def _expand(crow: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All CSR entries of ``rows (U,)``: (owner ``(K,)`` index into ``rows``, position ``(K,)``)."""
    start, length = crow[rows], crow[rows + 1] - crow[rows]  # (U,) each
    device = rows.device
    owner = torch.repeat_interleave(torch.arange(len(rows), device=device), length)  # (K,)
    first = torch.repeat_interleave(torch.cumsum(length, 0) - length, length)  # (K,)
    within = torch.arange(len(owner), device=device) - first  # (K,)
    return owner, torch.repeat_interleave(start, length) + within


def _score(st: _Stats, r: torch.Tensor, g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unnormalized ``a[r, y] + b[g, y]`` at the pairs ``(K,)``."""
    key = g * st.a.shape[1] + y
    idx = torch.searchsorted(st.b_keys, key).clamp(max=max(len(st.b_keys) - 1, 0))
    b = torch.where(st.b_keys[idx] == key, st.b_vals[idx], 0.0) if len(st.b_keys) else 0.0
    return st.a[r, y] + b


def _direction_kl(
    train: torch.Tensor, test: torch.Tensor, *, direction: str, n: int, epsilon: float
) -> tuple[float, int, int, int]:
    """Sum over test queries of one direction: (weighted KL sum, kept, distinct kept, skipped).

    Sparse: ``KL_x = sum_y P log P - log(ε/N) - sum_{y in supp Q_x} P (log Q_ε - log(ε/N))``, and
    ``sum_y s log s`` of ``s = a + b`` is ``a``'s per-relation sum corrected on ``supp b``.
    """
    y_col, g_col = DIRECTIONS[direction]
    num_rel = int(max(train[:, 1].max(), test[:, 1].max())) + 1
    ps = _stats(train, y_col=y_col, g_col=g_col, n=n, num_rel=num_rel)
    qs = _stats(test, y_col=y_col, g_col=g_col, n=n, num_rel=num_rel)
    queries, weight = torch.unique(test[:, [1, g_col]], dim=0, return_counts=True)  # (U, 2), (U,)
    r, g = queries[:, 0], queries[:, 1]  # (U,) each
    z_p = ps.a_sum[r] + ps.b_sum[g]  # (U,) normalizer of P
    ok = z_p > 0
    z_p = z_p.clamp(min=torch.finfo(torch.float64).tiny)
    # sum_y P log P = (sum_y s log s) / Z - log Z
    own, pos = _expand(ps.b_crow, g)  # pairs (query, y in supp b_g)
    y = ps.b_cols[pos]
    a_v, s_v = ps.a[r[own], y], ps.a[r[own], y] + ps.b_vals[pos]  # (K,) each
    s_log_s = ps.a_ent[r].index_add(0, own, torch.xlogy(s_v, s_v) - torch.xlogy(a_v, a_v))
    neg_entropy = s_log_s / z_p - torch.log(z_p)  # (U,)
    # cross term on supp Q_x = supp a_Q[r] U supp b_Q[g]
    own_a, pos_a = _expand(qs.a_crow, r)
    own_b, pos_b = _expand(qs.b_crow, g)
    keys = torch.unique(torch.cat([own_a * n + qs.a_cols[pos_a], own_b * n + qs.b_cols[pos_b]]))
    own, y = keys // n, keys % n  # (K',) each
    q = _score(qs, r[own], g[own], y) / (qs.a_sum[r] + qs.b_sum[g])[own]
    p = _score(ps, r[own], g[own], y) / z_p[own]
    floor = math.log(epsilon / n)  # log Q_ε outside supp Q_x
    gain = torch.zeros(len(queries), dtype=torch.float64, device=p.device).index_add_(
        0, own, p * (torch.log((1.0 - epsilon) * q + epsilon / n) - floor)
    )
    kl = neg_entropy - floor - gain  # (U,)
    return (
        float((kl * weight)[ok].sum()),
        int(weight[ok].sum()),
        int(ok.sum()),
        int(weight[~ok].sum()),
    )


def kl_train_test(
    train: torch.Tensor,
    test: torch.Tensor,
    *,
    num_entities: int,
    epsilon: float = DEFAULT_EPSILON,
    dataset: str = "",
) -> KlResult:
    """``D_KL(P||Q)`` of ``p(y|x)`` between training (``P``) and test (``Q``) triples (paper 002,
    §5.2, figure 2), averaged over the test queries of both directions.

    Choices (the paper states only the recipe in the module docstring):

    1. Queries ``x``: every test triple ``(h, r, t)`` gives a head query ``x = (r, t)``, ``y = h``
       and a tail query ``x = (h, r)``, ``y = t``. The KL is averaged over these ``2 |test|``
       (triple, direction) pairs, i.e. over distinct queries weighted by their test frequency
       (the ``p_d(x)`` of eq. 3).
    2. Head query ``(?, r_k, e_j)``: ``s(e_i) = p(e_i|r_k) + p(e_j|e_i)`` with
       ``p(e_i|r_k) = #(e_i, r_k, ·) / #(·, r_k, ·)`` and ``p(e_j|e_i) = #(e_i, ·, e_j) /
       #(e_i, ·, ·)`` (``·``: any; ``0/0 = 0``). Tail query ``(e_i, r_k, ?)``, "in the same
       manner": ``s(e_j) = p(e_j|r_k) + p(e_i|e_j)`` with ``p(e_j|r_k) = #(·, r_k, e_j) /
       #(·, r_k, ·)`` and ``p(e_i|e_j) = #(e_i, ·, e_j) / #(·, ·, e_j)``. Counts come from the
       split itself: training counts for ``P``, test counts for ``Q``.
    3. ``s`` sums to ``1 + sum_y p(g|y)`` (not 1), so ``p(y|x) = s(y) / sum_y' s(y')``.
    4. ``Q`` is smoothed towards uniform, ``Q_ε = (1 - ε) Q + ε / |Y|``, so the KL is finite (``Q``
       is zero wherever the test split lacks the pair). The KL grows like ``log(1/ε)`` where
       ``P`` has mass outside ``Q``'s support, so values are comparable at equal ``ε`` only.
       ``P`` is not smoothed. Identical splits give ``0 <= KL <= -log(1 - ε)``.
    5. A query whose training ``s`` is all zero (its relation and its given entity unseen in
       training) has no ``P`` and is skipped (counted in ``skipped``).

    Vectorized and sparse: work grows with the nonzeros of the frequency tables on the test
    queries, not with ``queries x |Y|``.

    Args:
        train: ``(M, 3)`` int64 (head, relation, tail) training triples.
        test: ``(M', 3)`` int64 test triples.
        num_entities: ``|Y|``; every id must be below it.
        epsilon: smoothing weight of ``Q`` in ``(0, 1)``.
        dataset: label copied into the result.

    Returns:
        :class:`KlResult` (KL in nats).

    Raises:
        ValueError: bad shapes, ids out of range, ``epsilon`` outside ``(0, 1)``, empty splits.
    """
    for name, t in (("train", train), ("test", test)):
        if t.ndim != 2 or t.shape[1] != 3 or t.dtype != torch.int64 or len(t) == 0:
            raise ValueError(f"{name} must be a non-empty (M, 3) int64 tensor, got {t.shape}")
        ent = t[:, [0, 2]]
        if ent.min() < 0 or ent.max() >= num_entities or t[:, 1].min() < 0:
            raise ValueError(f"{name} has ids outside [0, num_entities={num_entities})")
    if not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon}")
    parts = {
        d: _direction_kl(train, test, direction=d, n=num_entities, epsilon=epsilon)
        for d in DIRECTIONS
    }
    kept = sum(p[1] for p in parts.values())

    def mean(total: float, n: int) -> float:
        return total / n if n else math.nan

    return KlResult(
        dataset=dataset,
        kl=mean(sum(p[0] for p in parts.values()), kept),
        kl_head=mean(parts["head"][0], parts["head"][1]),
        kl_tail=mean(parts["tail"][0], parts["tail"][1]),
        queries=kept,
        distinct_queries=sum(p[2] for p in parts.values()),
        skipped=sum(p[3] for p in parts.values()),
        epsilon=epsilon,
        num_entities=num_entities,
    )


def dataset_kl(name: str, *, epsilon: float = DEFAULT_EPSILON) -> KlResult:
    """:func:`kl_train_test` on a registered KG dataset or directory (train vs test split).

    Raises:
        UserError / DatasetError: from :func:`embedlab.datasets.kg.load_kg`.
    """
    ds = load_kg(name)
    return kl_train_test(
        ds.splits["train"],
        ds.splits["test"],
        num_entities=ds.num_entities,
        epsilon=epsilon,
        dataset=name,
    )


def figure2(results: Sequence[KlResult], path: Path) -> Path:
    """Figure 2 of paper 002: one bar of ``D_KL(P||Q)`` per dataset, PNG at ``path``.

    Args:
        results: from :func:`dataset_kl`, one per bar.
        path: output PNG (parent folders are created).

    Returns:
        ``path``.

    Raises:
        ValueError: no results.
    """
    if not results:
        raise ValueError("figure2 needs at least one dataset")
    from embedlab.plots import new_figure, save_png

    fig, ax = new_figure((1.6 + 1.4 * len(results), 4.0))
    names = [r.dataset or f"#{i}" for i, r in enumerate(results)]
    bars = ax.bar(names, [r.kl for r in results], color="tab:blue", width=0.6)
    ax.bar_label(bars, fmt="%.2f")
    ax.margins(y=0.12)  # room for the labels
    ax.set_xlabel("dataset")
    ax.set_ylabel(r"$D_{KL}(P\,\|\,Q)$ of $p(y|x)$ (nats)")
    ax.set_title(f"train vs test (paper 002, fig. 2; ε = {results[0].epsilon:g})", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return save_png(fig, path)
