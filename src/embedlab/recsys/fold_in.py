"""Fold-in: the factor of a user who is not in the model, from their ratings, without retraining.

Surprise cannot score a user unseen in training (Surprise issues 34, 208); the usual answer is a
fold-in (Sarwar et al., "Incremental SVD-based algorithms", 2002): hold the item side fixed and
solve for the new row. Here that is one ALS half-step for a single user row, with the run's own
regularization, so it minimizes the objective the run trained on (:mod:`embedlab.recsys.als`)
over that row:

    x* = argmin_x  Σ_i (t_i - f_iᵀ x)² + λ n |x|² + ρ |p|²

with ``f_i = [q_i, 1]`` and ``x = [p, b]`` when ``model.biases`` (else ``f_i = q_i``, ``x = p``),
target ``t_i = r_i - mean - b_i`` (``- b_i`` only with biases), ``n`` the number of ratings,
``λ = train.weight_decay`` and ``ρ`` the user table's L2 ``regularize`` term on the factor
coordinates (``w n`` weighted, ``w R`` unweighted with ``R`` the run's training ratings; 0 when
off), i.e. ``x* = (FᵀF + diag(λ n + ρ [factor coordinates]))⁻¹ Fᵀ t``. SGD-MF steps on half this
objective (the ALS module docstring derives the mapping), so the formula holds for SGD, ALS and
GRALS runs alike. A new user has no graph neighbours, so GRALS' Laplacian term is absent, and
SSE and dropout are training-time regularizers that predictions do not use.
"""

from __future__ import annotations

import torch
from torch import Tensor

from embedlab.embeddings.config import RegularizeConfig
from embedlab.errors import UserError
from embedlab.recsys.als import check_als_penalty
from embedlab.recsys.model import MatrixFactorization


@torch.no_grad()
def fold_in_user(
    model: MatrixFactorization,
    *,
    items: Tensor,
    ratings: Tensor,
    weight_decay: float,
    penalty: RegularizeConfig | None,
    num_train_ratings: int,
) -> tuple[Tensor, float]:
    """The new user's factor and bias (module docstring), computed in float64.

    Args:
        items: ``(n,)`` int64 item rows the user rated (a repeated item counts as often as it
            appears, as a repeated training rating does). ratings: ``(n,)`` their ratings.
        weight_decay: λ (``train.weight_decay``). penalty: the user table's ``regularize``.
        num_train_ratings: R, the run's number of training ratings (unweighted penalty only).

    Returns:
        ``(p (d,) float64, b)``: the factor, and the bias (0.0 when the model has no biases).

    Raises:
        UserError: no ratings, or a user penalty without a closed-form solve (not L2).
    """
    if items.numel() == 0:
        raise UserError("fold-in needs at least one rating")
    message = None if penalty is None else check_als_penalty(penalty, "user_embedding")
    if message is not None:
        raise UserError(f"no fold-in for this run: {message}")
    q = model.items.weight.detach().to(torch.float64)  # (I, d)
    dim = q.shape[1]
    feats = q.index_select(0, items)  # (n, d)
    target = ratings.to(torch.float64) - float(model.mean)  # (n,)
    if model.biases:
        target = target - model.item_bias.detach().to(torch.float64).index_select(0, items)
        feats = torch.cat([feats, feats.new_ones(len(items), 1)], dim=1)  # (n, k = d + 1)
    n = items.numel()
    ridge = torch.full(
        (feats.shape[1],), weight_decay * n, dtype=torch.float64, device=feats.device
    )  # (k,)
    if penalty is not None and penalty.kind != "none" and penalty.weight != 0.0:
        ridge[:dim] += penalty.weight * (n if penalty.weighted else num_train_ratings)
    gram = feats.T @ feats + torch.diag(ridge)  # (k, k)
    rhs = feats.T @ target  # (k,)
    # the minimum-norm solution where the system is singular (λ = 0 and n < k)
    x = torch.linalg.lstsq(gram, rhs.unsqueeze(1), driver="gelsd").solution.squeeze(1)  # (k,)
    return x[:dim], float(x[dim]) if model.biases else 0.0
