"""Composition functions of KD codes: D code-embedding vectors -> one symbol embedding.

Paper 003 (Chen, Min, Sun, ICML 2018): the embedding transformation ``f_e`` maps the code
embeddings ``W^1[c^1], ..., W^D[c^D]`` (each of width d') to the symbol embedding ``v`` of width d.
Proposition 1 (supplement): the linear composition is a sparse binary low-rank factorization
``U = B C``; proposition 2: a non-linear one can reach a higher rank for the same K, D, d'.
"""

from __future__ import annotations

import torch
from torch import nn

from embedlab.config import KdConfig


class LinearComposition(nn.Module):
    """``v = P (sum_j e_j) + b`` (or the mean over j): ``(B, D, d') -> (B, d)``."""

    def __init__(self, *, code_dim: int, dim: int, reduce: str) -> None:
        super().__init__()
        self.reduce = reduce
        self.proj = nn.Linear(code_dim, dim)

    def pooled(self, codes: torch.Tensor) -> torch.Tensor:
        """``(B, D, d') -> (B, d')``: sum or mean over the D positions."""
        return codes.sum(1) if self.reduce == "sum" else codes.mean(1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pooled(codes))


class MlpComposition(LinearComposition):
    """``v = P2 tanh(P1 pool(e) + b1) + b2``: ``(B, D, d') -> (B, d)``, hidden width h."""

    def __init__(self, *, code_dim: int, dim: int, reduce: str, hidden: int) -> None:
        super().__init__(code_dim=code_dim, dim=dim, reduce=reduce)
        self.proj = nn.Linear(code_dim, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.proj(self.pooled(codes))))


class LstmComposition(nn.Module):
    """The supplement's section 2: an LSTM (hidden width d') reads ``e_1 .. e_D`` in order; the
    mean of its D hidden states is projected to d. ``(B, D, d') -> (B, d)``.

    The supplement adds ``W^j[c^j]`` to every gate directly; ``torch.nn.LSTM`` first multiplies
    the input by a learned ``(4d', d')`` matrix, which contains that form (identity blocks).
    """

    def __init__(self, *, code_dim: int, dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(code_dim, code_dim, batch_first=True)
        self.proj = nn.Linear(code_dim, dim)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(codes)  # (B, D, d')
        return self.proj(hidden.mean(1))


def build_composition(config: KdConfig, dim: int) -> nn.Module:
    """The composition named by ``config.composition`` (registry below), output width ``dim``."""
    if config.composition == "linear":
        return LinearComposition(code_dim=config.code_dim, dim=dim, reduce=config.reduce)
    if config.composition == "mlp":
        hidden = config.hidden or dim
        return MlpComposition(
            code_dim=config.code_dim, dim=dim, reduce=config.reduce, hidden=hidden
        )
    return LstmComposition(code_dim=config.code_dim, dim=dim)


COMPOSITIONS = {"linear": LinearComposition, "mlp": MlpComposition, "lstm": LstmComposition}


def composition_parameter_count(config: KdConfig, dim: int) -> int:
    """``C`` of Lemma 1 for this composition, by formula (tests compare it with the module):
    linear ``d'd + d``; mlp ``d'h + h + hd + d``; lstm ``4d'(d' + d' + 2) + d'd + d``
    (torch's LSTM has input and recurrent biases)."""
    dp = config.code_dim
    if config.composition == "linear":
        return dp * dim + dim
    if config.composition == "mlp":
        h = config.hidden or dim
        return dp * h + h + h * dim + dim
    return 4 * dp * (2 * dp + 2) + dp * dim + dim
