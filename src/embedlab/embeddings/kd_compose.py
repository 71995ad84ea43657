"""Composition functions of KD codes: D code-embedding vectors -> one symbol embedding.

Paper 003 (Chen, Min, Sun, ICML 2018): the embedding transformation ``f_e`` maps the code
embeddings ``W^1[c^1], ..., W^D[c^D]`` (each of width d') to the symbol embedding ``v`` of width d.
Proposition 1 (supplement): the linear composition is a sparse binary low-rank factorization
``U = B C``; proposition 2: a non-linear one can reach a higher rank for the same K, D, d'.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from embedlab.embeddings.config import KdConfig


def gather_code_vectors(codebook: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Hard lookup ``W^j[c^j]``: ``codebook (D or 1, K, d')`` (a shared one is expanded, not
    copied), ``codes (B, D)`` integer -> ``(B, D, d')``."""
    D = codes.shape[1]
    book = codebook.expand(D, -1, -1)
    positions = torch.arange(D, device=codes.device)
    return book[positions, codes.long()]


def _flat_rows(codes: torch.Tensor, K: int) -> torch.Tensor:
    """``codes (B, D)`` -> ``(B, D)`` int64 rows ``j*K + c^j`` of the stacked ``(D*K, d')`` book."""
    D = codes.shape[1]
    return codes.long() + torch.arange(D, device=codes.device) * K


class _CodeVectorSum(torch.autograd.Function):
    """``book (D*K, d')``, ``codes (B, D)`` int64 -> ``sum_j book[j*K + c^j]`` ``(B, d')``:
    forward one ``embedding_bag`` (fixed bags of D); backward D ``index_add_`` of the
    ``(B, d')`` gradient into the position blocks (4-6x faster here than ``embedding_bag``'s
    sort-based dense backward: docs/bench/kd_joint_step.json, the ``frozen`` rows)."""

    @staticmethod
    def forward(ctx: Any, book: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        K = book.shape[0] // codes.shape[1]
        ctx.save_for_backward(codes)
        ctx.K, ctx.book_shape = K, book.shape
        return F.embedding_bag(_flat_rows(codes, K), book, mode="sum")

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (codes,) = ctx.saved_tensors
        K = ctx.K
        out = grad.new_zeros(ctx.book_shape)
        for j in range(codes.shape[1]):
            out[j * K : (j + 1) * K].index_add_(0, codes[:, j], grad)
        return out, None


def code_vector_sum(codebook: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """``sum_j W^j[c^j]``: ``codebook (D or 1, K, d')``, ``codes (B, D)`` -> ``(B, d')``.

    The sum of :func:`gather_code_vectors` over j without the ``(B, D, d')`` vectors; its
    gradient reaches the codebook rows that were read (first order only: ``create_graph``
    through it raises).

    Raises:
        IndexError: a code outside ``[0, K)``.
    """
    D = codes.shape[1]
    K, dp = codebook.shape[1], codebook.shape[2]
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= K):
        raise IndexError(
            f"KD codes must lie in [0, {K}); got {int(codes.min())}..{int(codes.max())}"
        )
    book = codebook.expand(D, -1, -1).reshape(D * K, dp)  # a shared book: copied, D*K*d'
    out: torch.Tensor = _CodeVectorSum.apply(book, codes.long())
    return out


class _StraightThroughGradient(torch.autograd.Function):
    """Value 0 ``(B, d')``; gradient ``dL/dw = dL/ds @ W^T`` to the soft weights ``w (B, D, K)``
    of ``s = sum_{j,k} w_jk W^j[k]`` (the codebook's gradient comes from the hard path)."""

    @staticmethod
    def forward(ctx: Any, soft: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(book)
        ctx.soft_shape = soft.shape
        return soft.new_zeros(soft.shape[0], book.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (book,) = ctx.saved_tensors  # (D*K, d')
        return (grad @ book.to(grad.dtype).T).view(ctx.soft_shape), None


def relaxed_code_sum(
    soft: torch.Tensor, codebook: torch.Tensor, *, straight_through: bool
) -> torch.Tensor:
    """``s = sum_j sum_k w_jk W^j[k]`` ``(B, d')`` of relaxed codes, without the ``(B, D, d')``
    vectors: ``soft (B, D, K)`` (softmax or Gumbel-softmax weights), ``codebook (D or 1, K, d')``.

    ``straight_through`` (STE, paper 003's supplement table 1): ``w = one_hot(argmax soft)`` in
    value, ``soft`` in gradient, so ``s`` is the hard :func:`code_vector_sum` and the gradient
    to ``soft`` is ``dL/ds @ W^T``: one ``(B, d') x (d', D*K)`` product in the backward pass,
    where the dense form ``einsum("bdk,dke->bde")`` takes three batched products and
    ``(B, D, d')`` buffers. Without STE, ``s = soft (B, D*K) @ W (D*K, d')``. Both equal the
    dense form's value and gradients (tests/embeddings/test_kd_pooled.py).
    """
    B, D, K = soft.shape
    book = codebook.expand(D, -1, -1).reshape(D * K, -1)  # (D*K, d')
    if not straight_through:
        return soft.reshape(B, D * K) @ book.to(soft.dtype)
    hard = code_vector_sum(codebook, soft.detach().argmax(-1))  # (B, d'): value and W's grad
    return hard + _StraightThroughGradient.apply(soft, book.detach())


def compose_hard(compose: nn.Module, codebook: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """``f(W^1[c^1], ..., W^D[c^D])`` of hard ``codes (B, D)`` -> ``(B, d)``: through
    :func:`code_vector_sum` and ``from_sum`` for a pooled composition (linear, mlp), else the
    composition of :func:`gather_code_vectors`. The trained layer's evaluation mode and the
    exported :class:`~embedlab.embeddings.kd_compact.CompactKdEmbedding` both call this, so they
    give the same bits."""
    if isinstance(compose, POOLED_COMPOSITIONS):
        return compose.from_sum(code_vector_sum(codebook, codes), codes.shape[1])
    return compose(gather_code_vectors(codebook, codes))


def _reduce(summed: torch.Tensor, reduce: str, D: int) -> torch.Tensor:
    """The pooled code vector from the sum over the D positions: itself or the mean."""
    return summed if reduce == "sum" else summed / D


class LinearComposition(nn.Module):
    """``v = P (sum_j e_j) + b`` (or the mean over j): ``(B, D, d') -> (B, d)``.

    ``from_sum(s, D)`` is the same map from the sum ``s = sum_j e_j`` ``(B, d')``, for callers
    that form the sum without the ``(B, D, d')`` vectors (:func:`relaxed_code_sum`).
    """

    def __init__(self, *, config: KdConfig, dim: int) -> None:
        super().__init__()
        self.dim, self.reduce = dim, config.reduce
        self.proj = nn.Linear(config.code_dim, dim)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.from_sum(codes.sum(1), codes.shape[1])

    def from_sum(self, summed: torch.Tensor, D: int) -> torch.Tensor:
        return self.proj(_reduce(summed, self.reduce, D))


class MlpComposition(nn.Module):
    """``v = P2 tanh(P1 pool(e) + b1) + b2``: ``(B, D, d') -> (B, d)``, hidden width h
    (``config.hidden``, default d); ``from_sum`` as :class:`LinearComposition`'s."""

    def __init__(self, *, config: KdConfig, dim: int) -> None:
        super().__init__()
        hidden = config.hidden or dim
        self.dim, self.reduce = dim, config.reduce
        self.proj = nn.Linear(config.code_dim, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.from_sum(codes.sum(1), codes.shape[1])

    def from_sum(self, summed: torch.Tensor, D: int) -> torch.Tensor:
        return self.out(torch.tanh(self.proj(_reduce(summed, self.reduce, D))))


class LstmComposition(nn.Module):
    """The supplement's section 2: an LSTM (hidden width d') reads ``e_1 .. e_D`` in order; the
    mean of its D hidden states is projected to d. ``(B, D, d') -> (B, d)``.

    The supplement adds ``W^j[c^j]`` to every gate directly; ``torch.nn.LSTM`` first multiplies
    the input by a learned ``(4d', d')`` matrix, which contains that form (identity blocks).
    It reads the D vectors in order, so it has no ``from_sum``.
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
#: compositions that read only the sum (or mean) of the D code vectors (``from_sum``)
POOLED_COMPOSITIONS = (LinearComposition, MlpComposition)

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
