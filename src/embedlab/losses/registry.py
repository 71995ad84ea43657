"""The registry of paper 002's losses (CONVENTIONS.md #5): each entry is the loss function plus
what a training type must hand it, so that training types dispatch on these declarations and
never on a loss's name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from embedlab.losses.ns import ns, ns_freq
from embedlab.losses.sans import sans
from embedlab.losses.sce import sce, sce_tail_linear
from embedlab.losses.sce_bc import sce_bc
from embedlab.losses.sce_ls import sce_ls

Family = Literal["softmax", "binary"]


@dataclass(frozen=True)
class LossSpec:
    """One loss of paper 002, table 1, and the inputs it needs.

    Attributes:
        fn: the loss, summed over the rows of a score matrix ``(Q, M)``:

            * softmax family: ``fn(scores, targets, **kw)`` with ``targets`` ``(Q,)`` int64 or a
              ``(Q, M)`` target distribution; normalized over the ``M`` candidates (all entities,
              or ``1 + k`` sampled ones: a sampled softmax);
            * binary family: ``fn(scores, positives, **kw)`` with ``positives`` ``(Q, M)`` bool;
              every other candidate is a negative (all entities, or ``k`` sampled ones).
        family: ``softmax`` or ``binary``.
        hyperparameters: fields of the loss config (``LossConfig``) passed to ``fn`` as keyword
            arguments of the same name.
        example_weights: needs ``weights=`` ``(Q,)`` per-example weights (eq. 16's backward
            correction ``#x / #y``), hence rows with a single target.
        noise: needs the noise distribution ``p_n`` (config fields ``freq_power``,
            ``freq_reading``): ``noise=`` ``(Q, M)`` probabilities of the candidates (weighted
            reading), or ``None`` when the negatives were drawn from ``p_n`` (sampled reading).
        tail_linear: the same loss over ``(queries (Q, d), candidates (N, d), targets (Q,))`` of
            a tail-linear interaction without the ``(Q, N)`` score matrix, taking the same keyword
            arguments as ``fn`` (:func:`~embedlab.losses.sce.sce_tail_linear`); ``None``: none.
    """

    fn: Callable[..., torch.Tensor]
    family: Family
    hyperparameters: tuple[str, ...] = ()
    example_weights: bool = False
    noise: bool = False
    tail_linear: Callable[..., torch.Tensor] | None = None


_NS_FIELDS = ("margin", "negative_reduction")

LOSSES: dict[str, LossSpec] = {
    "sce": LossSpec(sce, "softmax", tail_linear=sce_tail_linear),  # eq. 5
    "sce_ls": LossSpec(  # eq. 17
        sce_ls, "softmax", hyperparameters=("label_smoothing",), tail_linear=sce_tail_linear
    ),
    "sce_bc": LossSpec(sce_bc, "softmax", example_weights=True, tail_linear=sce_tail_linear),
    "ns": LossSpec(ns, "binary", hyperparameters=_NS_FIELDS),  # eq. 6, uniform noise
    "ns_freq": LossSpec(ns_freq, "binary", hyperparameters=_NS_FIELDS, noise=True),  # §3.1.2
    "sans": LossSpec(  # eq. 14
        sans, "binary", hyperparameters=("adversarial_temperature", *_NS_FIELDS)
    ),
}
