"""Apply the configured loss of paper 002's family to one score matrix.

Every training type reduces to ``scores (Q, M)`` plus which entries are positive:

* 1vsAll: ``M = N``, one positive per row (``targets``);
* KvsAll: ``M = N``, every training answer of the query positive;
* negative sampling: ``M = 1 + k``, column 0 the positive, the rest sampled negatives (softmax
  losses then are a sampled softmax over the ``1 + k`` candidates).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from embedlab.kge.config import LossConfig
from embedlab.losses import LOSS_FAMILY, ns, ns_freq, sans, sce, sce_bc, sce_ls


@dataclass
class Batch:
    """What a loss may need besides the scores (each field ``None`` when not applicable).

    targets: ``(Q,)`` column of the single positive; positives: ``(Q, M)`` bool;
    bc_weights: ``(Q,)`` eq. 16 weights; noise: ``(Q, M)`` ``p_n`` of each candidate.
    """

    positives: torch.Tensor
    targets: torch.Tensor | None = None
    bc_weights: torch.Tensor | None = None
    noise: torch.Tensor | None = None


def apply_loss(config: LossConfig, scores: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Summed loss of ``scores (Q, M)`` (the caller normalizes).

    Raises:
        ValueError: ``sce_bc`` without weights or single targets, ``ns_freq`` weighted without
            noise (programming errors: the tasks supply them).
    """
    name = config.name
    if LOSS_FAMILY[name] == "softmax":
        targets = batch.targets
        if name == "sce_bc":
            if targets is None or batch.bc_weights is None:
                raise ValueError("sce_bc needs single targets and backward-correction weights")
            return sce_bc(scores, targets, weights=batch.bc_weights)
        if targets is None:  # several positives: target distribution p_d(y|x) (eq. 4)
            pos = batch.positives.to(scores.dtype)
            targets = pos / pos.sum(dim=1, keepdim=True).clamp(min=1.0)
        if name == "sce_ls":
            return sce_ls(scores, targets, lam=config.label_smoothing)
        return sce(scores, targets)
    gamma, reduction = config.margin, config.negative_reduction
    if name == "sans":
        return sans(
            scores,
            batch.positives,
            alpha=config.adversarial_temperature,
            gamma=gamma,
            reduction=reduction,
        )
    if name == "ns_freq" and batch.noise is not None:
        return ns_freq(scores, batch.positives, noise=batch.noise, gamma=gamma, reduction=reduction)
    if name == "ns_freq" and config.freq_reading == "weighted":
        raise ValueError("ns_freq (weighted) needs the noise probabilities of the candidates")
    return ns(scores, batch.positives, gamma=gamma, reduction=reduction)
