"""Apply the configured loss of paper 002's family (:data:`embedlab.losses.LOSSES`).

Every training type reduces to ``scores (Q, M)`` plus which entries are positive:

* 1vsAll: ``M = N``, one positive per row (``targets``);
* KvsAll: ``M = N``, every training answer of the query positive;
* negative sampling: ``M = 1 + k``, column 0 the positive, the rest sampled negatives (softmax
  losses then are a sampled softmax over the ``1 + k`` candidates).

The loss's registry entry (:class:`~embedlab.losses.LossSpec`) says which of the optional inputs
of :class:`Batch` it reads and which config fields it takes; nothing here tests a loss's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from embedlab.kge.config import LossConfig
from embedlab.losses import LOSSES, LossSpec


@dataclass
class Batch:
    """What a loss may need besides the scores (each field ``None`` when not applicable).

    targets: ``(Q,)`` column of the single positive; positives: ``(Q, M)`` bool (``None``:
    the ``targets`` column); weights: ``(Q,)`` per-example weights (eq. 16, read by losses with
    ``example_weights``); noise: ``(Q, M)`` ``p_n`` of each candidate (losses with ``noise``).
    """

    targets: torch.Tensor | None = None
    positives: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    noise: torch.Tensor | None = None


def loss_spec(config: LossConfig) -> LossSpec:
    """The registry entry of ``config.name``."""
    return LOSSES[config.name]


def _keyword_arguments(config: LossConfig, batch: Batch) -> dict[str, Any]:
    """The keyword arguments of the loss: its declared config fields and batch inputs.

    Raises:
        ValueError: a declared input missing from ``batch`` (a programming error: the training
            types supply them).
    """
    spec = loss_spec(config)
    kwargs: dict[str, Any] = {name: getattr(config, name) for name in spec.hyperparameters}
    if spec.example_weights:
        if batch.targets is None or batch.weights is None:
            raise ValueError(f"{config.name} needs single targets and backward-correction weights")
        kwargs["weights"] = batch.weights
    if spec.noise:
        if batch.noise is None and config.freq_reading == "weighted":
            raise ValueError(
                f"{config.name} (weighted) needs the noise probabilities of the candidates"
            )
        kwargs["noise"] = batch.noise  # None: negatives drawn from p_n (sampled reading)
    return kwargs


def apply_loss(config: LossConfig, scores: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Summed loss of ``scores (Q, M)`` (the caller normalizes).

    Raises:
        ValueError: an input the loss declares is missing (see :func:`_keyword_arguments`), or
            neither ``targets`` nor ``positives`` is given.
    """
    spec = loss_spec(config)
    kwargs = _keyword_arguments(config, batch)
    targets, positives = batch.targets, batch.positives
    if spec.family == "softmax":
        if targets is None:  # several positives: target distribution p_d(y|x) (eq. 4)
            if positives is None:
                raise ValueError("a loss needs targets or positives")
            # at least fp32: under bf16 autocast the rows of p_d(y|x) must still sum to 1
            pos = positives.to(torch.promote_types(scores.dtype, torch.float32))
            targets = pos / pos.sum(dim=1, keepdim=True).clamp(min=1.0)
        return spec.fn(scores, targets, **kwargs)
    if positives is None:
        if targets is None:
            raise ValueError("a loss needs targets or positives")
        positives = torch.zeros_like(scores, dtype=torch.bool)
        positives[torch.arange(len(targets), device=targets.device), targets] = True
    return spec.fn(scores, positives, **kwargs)


def apply_tail_linear_loss(
    config: LossConfig, queries: torch.Tensor, candidates: torch.Tensor, batch: Batch
) -> torch.Tensor:
    """Summed loss of ``scores = queries (Q, d) @ candidates (N, d).T`` with ``batch.targets``
    ``(Q,)``, without the ``(Q, N)`` matrix (the loss's ``tail_linear`` kernel).

    Raises:
        ValueError: the loss has no tail-linear kernel, no targets, or a missing input.
    """
    kernel = loss_spec(config).tail_linear
    if kernel is None or batch.targets is None:
        raise ValueError(f"{config.name} has no tail-linear kernel, or the batch no targets")
    return kernel(queries, candidates, batch.targets, **_keyword_arguments(config, batch))
