"""Composition functions of KD codes: D code-embedding vectors -> one symbol embedding.

Paper 003 (Chen, Min, Sun, ICML 2018): the embedding transformation ``f_e`` maps the code
embeddings ``W^1[c^1], ..., W^D[c^D]`` (each of width d') to the symbol embedding ``v`` of width d.
Proposition 1 (supplement): the linear composition is a sparse binary low-rank factorization
``U = B C``; proposition 2: a non-linear one can reach a higher rank for the same K, D, d'.
"""

from __future__ import annotations

import torch
from torch import nn

from embedlab.embeddings.config import KdConfig


def gather_code_vectors(codebook: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Hard lookup ``W^j[c^j]``: ``codebook (D or 1, K, d')`` (a shared one is expanded, not
    copied), ``codes (B, D)`` integer -> ``(B, D, d')``."""
    D = codes.shape[1]
    book = codebook.expand(D, -1, -1)
    positions = torch.arange(D, device=codes.device)
    return book[positions, codes.long()]


def _pool(codes: torch.Tensor, reduce: str) -> torch.Tensor:
    """``(B, D, d') -> (B, d')``: sum or mean over the D positions."""
    return codes.sum(1) if reduce == "sum" else codes.mean(1)


class LinearComposition(nn.Module):
    """``v = P (sum_j e_j) + b`` (or the mean over j): ``(B, D, d') -> (B, d)``."""

    def __init__(self, *, config: KdConfig, dim: int) -> None:
        super().__init__()
        self.dim, self.reduce = dim, config.reduce
        self.proj = nn.Linear(config.code_dim, dim)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.proj(_pool(codes, self.reduce))


class MlpComposition(nn.Module):
    """``v = P2 tanh(P1 pool(e) + b1) + b2``: ``(B, D, d') -> (B, d)``, hidden width h
    (``config.hidden``, default d)."""

    def __init__(self, *, config: KdConfig, dim: int) -> None:
        super().__init__()
        hidden = config.hidden or dim
        self.dim, self.reduce = dim, config.reduce
        self.proj = nn.Linear(config.code_dim, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.proj(_pool(codes, self.reduce))))


class LstmComposition(nn.Module):
    """The supplement's section 2: an LSTM (hidden width d') reads ``e_1 .. e_D`` in order; the
    mean of its D hidden states is projected to d. ``(B, D, d') -> (B, d)``.

    The supplement adds ``W^j[c^j]`` to every gate directly; ``torch.nn.LSTM`` first multiplies
    the input by a learned ``(4d', d')`` matrix, which contains that form (identity blocks).
    """

    def __init__(self, *, config: KdConfig, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.lstm = nn.LSTM(config.code_dim, config.code_dim, batch_first=True)
        self.proj = nn.Linear(config.code_dim, dim)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(codes)  # (B, D, d')
        return self.proj(hidden.mean(1))


Composition = LinearComposition | MlpComposition | LstmComposition

COMPOSITIONS: dict[str, type[Composition]] = {
    "linear": LinearComposition,
    "mlp": MlpComposition,
    "lstm": LstmComposition,
}


def build_composition(config: KdConfig, dim: int) -> Composition:
    """The composition named by ``config.composition`` (:data:`COMPOSITIONS`), output width d."""
    return COMPOSITIONS[config.composition](config=config, dim=dim)


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
