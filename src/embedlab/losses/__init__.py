"""Losses: pure functions of scores (losses never own models)."""

from embedlab.losses.sce import sce, sce_tail_linear

LOSSES = {"sce": sce}

__all__ = ["LOSSES", "sce", "sce_tail_linear"]
