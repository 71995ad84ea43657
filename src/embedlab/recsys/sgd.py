"""SGD-MF: mini-batch stochastic gradient descent with sparse row updates, batched.

Per rating ``(u, i, r)`` the update is Surprise's / Funk's SGD (Koren et al. 2009, eq. 5)::

    e    = r - r_hat(u, i)
    b_u += lr (e - λ b_u)          b_i += lr (e - λ b_i)
    p_u += lr (e q_i - λ p_u)      q_i += lr (e p_u - λ q_i)

Here a batch of ``B`` ratings is computed at once from the same parameters and applied with
``index_add_`` (ratings of one row inside a batch add up, as in Hogwild). Gradients are written by
hand (no autograd graph): a handful of large tensor ops per batch instead of many small ones.
SSE replaces the user and item indices of each rating first (training only); embedding dropout
multiplies the factors by an inverted-dropout mask.

Table penalties (``penalties``: the tables' ``regularize``, the same term as KGE). KGE adds
``EmbeddingTable.penalty(indices)`` to the batch's *mean* loss; SGD-MF steps on the batch's *sum*
of ``½ e²`` (the rule above), so the penalty enters times the batch size ``B``. With
``pen(x) = w/p Σ_c |x_c|^p`` (``n3``: p = 3), ``u_b``, ``i_b`` the batch's rows before SSE (KGE
penalizes the batch's own indices) and primes for the SSE-replaced rows, a step is
``θ -= lr ∇_θ L_batch`` at the parameters the batch was computed from::

    L_batch = Σ_b [½ e_b² + ½ λ (|p'_b|² + |q'_b|² + b'_u² + b'_i²)]
              + B · users.penalty(u) + B · items.penalty(i)
    B · users.penalty(u) = Σ_b pen(p_{u_b})           weighted (LibKGE: Σ_rows count · pen / B)
                         = B · Σ_{all users} pen(p_u)  unweighted

(likewise the items). The penalty is on the factors only (no biases, no dropout mask). Summed
over an epoch of R ratings: ``Σ_r ½ e_r² + ... + Σ_r pen(p_{u_r})`` (weighted) or
``... + R Σ_u pen(p_u)`` (unweighted), R times KGE's "mean loss + penalty". Weighted ``lp`` with
p = 2 and weight w is Surprise's λ = w on the factors. The unweighted penalty steps the whole
table every batch (a dense ``(N, d)`` op, as KGE's autograd does).

Data parallel (``world``, under torchrun): every rank holds the whole model and draws the same
epoch order; rank r computes the updates of its contiguous slice of each batch (its own SSE and
dropout draws), the ranks all-gather those row updates, and every rank applies all of them in
batch order: the same step as one process with the same batch (exactly so without SSE or
dropout, whose draws are per rank). It spreads the arithmetic, not the memory.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from embedlab.distributed import SINGLE, World, gather_padded, shard_bounds
from embedlab.embeddings.config import RegularizeConfig
from embedlab.recsys.model import MatrixFactorization


def _active(reg: RegularizeConfig | None) -> tuple[float, int, bool] | None:
    """``(weight, p, weighted)`` of a penalty that is on; None for kind none or weight 0 (as
    :meth:`EmbeddingTable.penalty`, which then returns 0)."""
    if reg is None or reg.kind == "none" or reg.weight == 0.0:
        return None
    return reg.weight, 3 if reg.kind == "n3" else reg.p, reg.weighted


def _lp_step(x: torch.Tensor, p: int, scale: float) -> torch.Tensor:
    """``scale · d/dx (|x|^p / p) = scale · sign(x) |x|^(p-1)`` elementwise, a new tensor shaped
    like ``x`` (p = 1: ``scale · sign(x)``, 0 at 0, as autograd of ``abs``)."""
    if p == 2:
        return x * scale
    if p == 1:
        return x.sign().mul_(scale)
    return x.abs().pow_(p - 1).mul_(x.sign()).mul_(scale)


@torch.no_grad()
def sgd_epoch(
    model: MatrixFactorization,
    *,
    users: torch.Tensor,
    items: torch.Tensor,
    ratings: torch.Tensor,
    lr: float,
    weight_decay: float,
    batch_size: int,
    generator: torch.Generator,
    penalties: tuple[RegularizeConfig, RegularizeConfig] | None = None,
    world: World = SINGLE,
) -> float:
    """One pass over the training ratings in a random order; returns the mean squared error of
    the predictions made during the pass (on the SSE-replaced rows, before each update).

    Args:
        users, items: ``(R,)`` int64 rows; ratings: ``(R,)`` float32.
        lr: learning rate; weight_decay: λ (per rating, on the rows it touches).
        batch_size: ratings per step B.
        generator: the shuffling RNG (SSE and dropout draw from the global RNG).
        penalties: ``(user, item)`` table penalties (the tables' ``regularize``), added to each
            batch's objective as in the module docstring; None (or kind none / weight 0): none,
            bit for bit the step without them.
        world: this rank of a data-parallel job (module docstring); the returned error is then
            the epoch's over all ranks.
    """
    if world.parallel:
        return _parallel_epoch(
            model, users=users, items=items, ratings=ratings, lr=lr, weight_decay=weight_decay,
            batch_size=batch_size, generator=generator, penalties=penalties, world=world,
        )  # fmt: skip
    model.train()
    P, Q = model.users.weight.data, model.items.weight.data
    bu, bi = model.user_bias.data, model.item_bias.data
    mu = float(model.mean)
    decay = -lr * weight_decay
    order = torch.randperm(users.numel(), generator=generator).to(users.device)
    # (B, d) work buffers reused by every step: fresh 1-2 MB tensors per step cost page faults
    width = min(batch_size, users.numel())
    buf_p, buf_q, buf_up = (P.new_empty(width, P.shape[1]) for _ in range(3))
    # shuffle and SSE for the whole epoch at once (each rating's replacement is independent, so
    # drawing them per batch or per epoch is the same distribution; per epoch is ~100x fewer ops)
    users_o, items_o = users.index_select(0, order), items.index_select(0, order)  # (R,)
    users_e = model.users.transform_indices(users_o)  # (R,) SSE-replaced
    items_e = model.items.transform_indices(items_o)  # (R,)
    pen_u, pen_i = (None, None) if penalties is None else map(_active, penalties)
    ratings_e = ratings.index_select(0, order)
    total = 0.0
    for start in range(0, order.numel(), batch_size):
        u = users_e[start : start + batch_size]  # (B,)
        i = items_e[start : start + batch_size]
        n = u.numel()
        p = torch.index_select(P, 0, u, out=buf_p[:n])  # (B, d); P[u] is ~2x slower on CPU
        q = torch.index_select(Q, 0, i, out=buf_q[:n])
        mask_u = model.users.dropout_mask(p)
        mask_i = model.items.dropout_mask(q)
        pd = p * mask_u if mask_u is not None else p  # dropped-out factors
        qd = q * mask_i if mask_i is not None else q
        # penalty steps, from the parameters before this batch's updates
        pen_steps = [
            _penalty_step(table, rows[start : start + batch_size], pen, lr)
            for table, rows, pen in ((P, users_o, pen_u), (Q, items_o, pen_i))
            if pen is not None
        ]
        pred = torch.linalg.vecdot(pd, qd).add_(mu)  # (B,)
        if model.biases:
            b_u, b_i = bu.index_select(0, u), bi.index_select(0, i)
            pred += b_u + b_i
        err = ratings_e[start : start + batch_size] - pred  # (B,)
        total += float(err.square().sum())
        e = err.unsqueeze(1)
        # d r_hat / d p_u = qd * mask_u; d r_hat / d q_i = pd * mask_i
        gp = qd * mask_u if mask_u is not None else qd
        gq = pd * mask_i if mask_i is not None else pd
        # updates lr * (e * grad - λ x), built in place (index_add_'s alpha= path is ~5x slower)
        up = torch.mul(p, decay, out=buf_up[:n]).addcmul_(e, gp, value=lr)
        P.index_add_(0, u, up)
        up = torch.mul(q, decay, out=buf_up[:n]).addcmul_(e, gq, value=lr)
        Q.index_add_(0, i, up)
        if model.biases:
            bu.index_add_(0, u, b_u.mul_(-weight_decay).add_(err).mul_(lr))
            bi.index_add_(0, i, b_i.mul_(-weight_decay).add_(err).mul_(lr))
        for table, rows, step in pen_steps:
            if rows is None:
                table.add_(step)
            else:
                table.index_add_(0, rows, step)
    return total / max(users.numel(), 1)


def _penalty_step(
    table: torch.Tensor, rows: torch.Tensor, pen: tuple[float, int, bool], lr: float
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``(table, rows, step)``: ``-lr ∇ (B · penalty)`` for a batch of ``B`` pre-SSE ``rows (B,)``;
    weighted: ``step (B, d)`` per rating, to ``index_add_`` at ``rows``; unweighted: ``rows``
    None and ``step (N, d)`` for the whole table ``(N, d)``."""
    weight, p, weighted = pen
    if weighted:  # B · Σ_unique count_u pen(x_u) / B = Σ_b pen(x_{u_b})
        return table, rows, _lp_step(table.index_select(0, rows), p, -lr * weight)
    return table, None, _lp_step(table, p, -lr * rows.numel() * weight)


@torch.no_grad()
def _parallel_epoch(
    model: MatrixFactorization,
    *,
    users: torch.Tensor,
    items: torch.Tensor,
    ratings: torch.Tensor,
    lr: float,
    weight_decay: float,
    batch_size: int,
    generator: torch.Generator,
    penalties: tuple[RegularizeConfig, RegularizeConfig] | None,
    world: World,
) -> float:
    """:func:`sgd_epoch` on ``world.world_size`` ranks (module docstring): per batch, one
    all-gather of the row updates ``[Δp | Δq | Δb_u | Δb_i | weighted-penalty steps]`` and one of
    their row indices, padded to the largest slice."""
    model.train()
    P, Q = model.users.weight.data, model.items.weight.data
    bu, bi = model.user_bias.data, model.item_bias.data
    mu, d = float(model.mean), P.shape[1]
    decay = -lr * weight_decay
    order = torch.randperm(users.numel(), generator=generator).to(users.device)
    users_o, items_o = users.index_select(0, order), items.index_select(0, order)
    ratings_o = ratings.index_select(0, order)
    pen_u, pen_i = (None, None) if penalties is None else map(_active, penalties)
    weighted = [(t, pen) for t, pen in ((P, pen_u), (Q, pen_i)) if pen is not None and pen[2]]
    total = torch.zeros((), dtype=torch.float64, device=users.device)
    for start in range(0, order.numel(), batch_size):
        stop = min(start + batch_size, order.numel())
        size = stop - start
        widest = -(-size // world.world_size)
        first, last = shard_bounds(size, world)
        sl = slice(start + first, start + last)
        u_raw, i_raw = users_o[sl], items_o[sl]
        u, i = model.users.transform_indices(u_raw), model.items.transform_indices(i_raw)
        p, q = P.index_select(0, u), Q.index_select(0, i)  # (n, d)
        mask_u, mask_i = model.users.dropout_mask(p), model.items.dropout_mask(q)
        pd = p * mask_u if mask_u is not None else p
        qd = q * mask_i if mask_i is not None else q
        pred = torch.linalg.vecdot(pd, qd).add_(mu)
        b_u, b_i = bu.index_select(0, u), bi.index_select(0, i)
        if model.biases:
            pred += b_u + b_i
        err = ratings_o[sl] - pred  # (n,)
        total += err.double().square().sum()
        e = err.unsqueeze(1)
        gp = qd * mask_u if mask_u is not None else qd
        gq = pd * mask_i if mask_i is not None else pd
        columns = [
            torch.mul(p, decay).addcmul_(e, gp, value=lr),
            torch.mul(q, decay).addcmul_(e, gq, value=lr),
            (b_u * -weight_decay + err).mul_(lr).unsqueeze(1),
            (b_i * -weight_decay + err).mul_(lr).unsqueeze(1),
        ]
        rows = [u, i, u_raw, i_raw]
        for table, pen in weighted:
            raw = u_raw if table is P else i_raw
            columns.append(_lp_step(table.index_select(0, raw), pen[1], -lr * pen[0]))
        # unweighted penalties step the whole table from the global batch size: every rank
        # computes the same step from the same parameters, before this batch's updates
        dense = [
            _penalty_step(table, users_o[start:stop] if table is P else items_o[start:stop],
                          pen, lr)
            for table, pen in ((P, pen_u), (Q, pen_i))
            if pen is not None and not pen[2]
        ]  # fmt: skip
        values = gather_padded(torch.cat(columns, dim=1), widest, world)  # (W * widest, c)
        indices = gather_padded(torch.stack(rows, dim=1), widest, world)
        keep = torch.cat([
            torch.arange(widest, device=values.device) < (b - a)
            for a, b in (shard_bounds(size, World(rank=r, world_size=world.world_size))
                         for r in range(world.world_size))
        ])  # fmt: skip
        values, indices = values[keep], indices[keep]
        P.index_add_(0, indices[:, 0], values[:, :d])
        Q.index_add_(0, indices[:, 1], values[:, d : 2 * d])
        if model.biases:
            bu.index_add_(0, indices[:, 0], values[:, 2 * d])
            bi.index_add_(0, indices[:, 1], values[:, 2 * d + 1])
        offset = 2 * d + 2
        for table, _ in weighted:
            column = 2 if table is P else 3
            table.index_add_(0, indices[:, column], values[:, offset : offset + d])
            offset += d
        for table, _, step in dense:
            table.add_(step)
    # CUDA's index_add_ accumulates repeated rows in no fixed order: keep one copy (rank 0's)
    if P.device.type == "cuda":
        for tensor in (P, Q, bu, bi):
            dist.broadcast(tensor, src=0)
    dist.all_reduce(total)
    return float(total) / max(users.numel(), 1)
