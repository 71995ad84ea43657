"""Losses: pure functions of scores (losses never own models; CONVENTIONS.md).

Two families (paper 002, table 1), registered in :data:`LOSSES` with the inputs each needs:

* softmax family, ``fn(scores (B, N), targets, ...)``: ``sce`` (eq. 5), ``sce_ls`` (eq. 17),
  ``sce_bc`` (eq. 16);
* binary family, ``fn(scores (B, M), positives (B, M) bool, ...)``: ``ns`` (eq. 6), ``ns_freq``
  (§3.1.2: weighted reading, or with ``noise=None`` the sampled reading, ``ns`` over negatives
  drawn from ``p_n``) and ``sans`` (eq. 14).
"""

from embedlab.losses.ns import frequency_negative_weights, ns, ns_freq, uniform_negative_weights
from embedlab.losses.registry import LOSSES, LossSpec
from embedlab.losses.sans import sans, sans_negative_weights
from embedlab.losses.sce import sce, sce_tail_linear
from embedlab.losses.sce_bc import sce_bc
from embedlab.losses.sce_ls import sce_ls

__all__ = [
    "LOSSES",
    "LossSpec",
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
