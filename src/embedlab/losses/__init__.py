"""Losses: pure functions of scores (losses never own models; CONVENTIONS.md).

Two families (paper 002, table 1):

* softmax family, ``fn(scores (B, N), targets, ...)``: ``sce`` (eq. 5), ``sce_ls`` (eq. 17),
  ``sce_bc`` (eq. 16);
* binary family, ``fn(scores (B, M), positives (B, M) bool, ...)``: ``ns`` (eq. 6), ``ns_freq``
  (§3.1.2, weighted reading; the sampled reading is ``ns`` over frequency-sampled negatives) and
  ``sans`` (eq. 14).
"""

from collections.abc import Callable
from typing import Literal

from embedlab.losses.ns import frequency_negative_weights, ns, ns_freq, uniform_negative_weights
from embedlab.losses.sans import sans, sans_negative_weights
from embedlab.losses.sce import sce, sce_tail_linear
from embedlab.losses.sce_bc import sce_bc
from embedlab.losses.sce_ls import sce_ls

LOSSES: dict[str, Callable[..., object]] = {
    "sce": sce,
    "sce_ls": sce_ls,
    "sce_bc": sce_bc,
    "ns": ns,
    "ns_freq": ns_freq,
    "sans": sans,
}

LOSS_FAMILY: dict[str, Literal["softmax", "binary"]] = {
    "sce": "softmax",
    "sce_ls": "softmax",
    "sce_bc": "softmax",
    "ns": "binary",
    "ns_freq": "binary",
    "sans": "binary",
}

__all__ = [
    "LOSSES",
    "LOSS_FAMILY",
    "frequency_negative_weights",
    "ns",
    "ns_freq",
    "sans",
    "sans_negative_weights",
    "sce",
    "sce_bc",
    "sce_ls",
    "sce_tail_linear",
    "uniform_negative_weights",
]
