"""Rating metrics: RMSE and MAE on predictions clipped to the rating scale."""

from __future__ import annotations

import torch

from embedlab.recsys.model import MatrixFactorization


@torch.no_grad()
def rating_metrics(
    model: MatrixFactorization,
    *,
    users: torch.Tensor,
    items: torch.Tensor,
    ratings: torch.Tensor,
    scale: tuple[float, float],
    batch_size: int = 1 << 16,
) -> dict[str, float]:
    """``{"rmse", "mae", "num_ratings"}`` of ``model`` on ``(R,)`` users/items/ratings.

    Predictions are clipped to ``scale`` (e.g. (1, 5)) first, as Surprise does by default.
    RMSE = sqrt(mean (r - r_hat)^2), MAE = mean |r - r_hat| (rating units).

    Raises:
        ValueError: no ratings.
    """
    if users.numel() == 0:
        raise ValueError("no ratings to evaluate")
    sq, ab = 0.0, 0.0
    for start in range(0, users.numel(), batch_size):
        sl = slice(start, start + batch_size)
        pred = model.predict(users[sl], items[sl]).clamp(*scale)
        err = ratings[sl].double() - pred.double()
        sq += float(err.square().sum())
        ab += float(err.abs().sum())
    n = users.numel()
    return {"rmse": (sq / n) ** 0.5, "mae": ab / n, "num_ratings": n}
