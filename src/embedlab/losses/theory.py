"""Theory of paper 002 (Kamigaito & Hayashi, 2021) as numbers: objective distributions (table 1),
``T_{x,y}`` (§4.1), the two Bregman generators and their divergence (eqs. 2, 7, footnote 3) and
figure 1.

Everything here is a pure function of probabilities, float64 by default; the dataset KL of figure 2
lives in :mod:`embedlab.losses.kl`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

ObjectiveLoss = Literal["ns_uni", "ns_freq", "sans", "sce", "sce_bc", "sce_ls"]
OBJECTIVE_LOSSES: tuple[ObjectiveLoss, ...] = (
    "ns_uni",
    "ns_freq",
    "sans",
    "sce",
    "sce_bc",
    "sce_ls",
)
ROW_SUM_TOL = 1e-6  # |sum_y p(y|x) - 1| allowed for a distribution given by the caller

TensorLike = torch.Tensor | float


def _distribution(name: str, p: torch.Tensor, *, positive: bool) -> torch.Tensor:
    """Validate a (…, Y) conditional distribution and return it as float64."""
    p = torch.as_tensor(p, dtype=torch.float64)
    if p.ndim not in (1, 2) or p.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (X, Y) or (Y,), got {tuple(p.shape)}")
    if not torch.isfinite(p).all():
        raise ValueError(f"{name} has non-finite entries")
    if positive and not (p > 0).all():
        raise ValueError(f"{name} must be strictly positive (paper 002 §3: non-zero noise)")
    if (p < 0).any():
        raise ValueError(f"{name} has negative entries")
    sums = p.sum(dim=-1)
    if ((sums - 1.0).abs() > ROW_SUM_TOL).any():
        raise ValueError(f"each row of {name} must sum to 1, got row sums {sums.tolist()}")
    return p


def t_xy(p_d: torch.Tensor, p_n: torch.Tensor) -> torch.Tensor:
    """``T_{x,y} = p_n(y|x) sum_{y_i} p_d(y_i|x) / p_n(y_i|x)`` (paper 002, §4.1 and table 1).

    Args:
        p_d: ``(X, Y)`` data conditional ``p_d(y|x)`` (or ``(Y,)``, one query); rows sum to 1.
        p_n: ``(X, Y)`` or ``(Y,)`` noise ``p_n(y|x)``, strictly positive, rows sum to 1
            (a ``(Y,)`` noise is shared by every query, like word2vec's unigram noise).

    Returns:
        ``T``, float64 with ``p_d``'s shape. ``T == 1`` everywhere for uniform noise (Prop. 5,
        appendix C); ``T`` is invariant to rescaling a row of ``p_n``.

    Raises:
        ValueError: bad shapes, negative or non-finite entries, rows not summing to 1,
        non-positive noise.
    """
    p_d = _distribution("p_d", p_d, positive=False)
    p_n = _distribution("p_n", p_n, positive=True)
    if p_n.shape[-1] != p_d.shape[-1] or (p_n.ndim == 2 and p_n.shape != p_d.shape):
        raise ValueError(
            f"p_n shape {tuple(p_n.shape)} must be (Y,) or p_d's shape {tuple(p_d.shape)}"
        )
    ratio_sum = (p_d / p_n).sum(dim=-1, keepdim=True)  # (X, 1): sum_i p_d(y_i|x)/p_n(y_i|x)
    return p_n * ratio_sum  # broadcasts (Y,) noise to (X, Y)


def objective_distribution(
    loss: str,
    p_d: torch.Tensor,
    *,
    p_n: torch.Tensor | None = None,
    lam: float = 0.0,
) -> torch.Tensor:
    """The model distribution ``p_θ(y|x)`` at the optimum of ``loss`` (paper 002, table 1).

    ========  =========================================  ==================================
    loss      objective distribution                      source
    ========  =========================================  ==================================
    ns_uni    ``p_d(y|x)``                                Prop. 5 (eq. 9, uniform ``p_n``)
    ns_freq   ``T_{x,y}^{-1} p_d(y|x)``                   Prop. 3, eq. 9 / eq. 22
    sans      ``(1 - λ) p_d(y|x) + λ / |Y|``              eq. 13 (approximate only)
    sce       ``p_d(y|x)``                                eqs. 4-5
    sce_bc    ``T_{x,y}^{-1} p_d(y|x)``                   eq. 15
    sce_ls    ``(1 - λ) p_d(y|x) + λ / |Y|``              eq. 17
    ========  =========================================  ==================================

    ``T^{-1} p_d`` as written in table 1 is already normalized: ``T_{x,y}^{-1} p_d(y|x) =
    (p_d(y|x)/p_n(y|x)) / sum_i p_d(y_i|x)/p_n(y_i|x)``, which is eq. 9 and sums to 1 over ``y``.
    It is nevertheless renormalized per row here, which changes it only by rounding. For
    ``sce_bc`` the same holds for the minimizer of eq. 15's weighted cross-entropy,
    ``∝ w_{x,y} p_d(y|x)`` with ``w = T^{-1}``. For ``sans`` the paper has no closed form
    (eq. 10 is implicit) and ``λ`` is a stand-in that grows during training; see
    :func:`sans_fixed_point` for the exact fixed point of eqs. 10 and 14.

    Args:
        loss: one of ``OBJECTIVE_LOSSES``.
        p_d: ``(X, Y)`` conditional ``p_d(y|x)`` (or ``(Y,)``), non-negative, rows sum to 1.
        p_n: ``(X, Y)`` or ``(Y,)`` noise, strictly positive, rows sum to 1; required by
            ``ns_freq`` and ``sce_bc``, ignored by the other rows.
        lam: smoothing weight ``λ`` in ``[0, 1]`` of ``sans`` and ``sce_ls``, ignored otherwise.

    Returns:
        float64 tensor of ``p_d``'s shape whose rows sum to 1.

    Raises:
        ValueError: unknown ``loss``, invalid ``p_d``/``p_n`` (see :func:`t_xy`), missing ``p_n``
        for ``ns_freq``/``sce_bc``, ``lam`` outside ``[0, 1]``.
    """
    if loss not in OBJECTIVE_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(OBJECTIVE_LOSSES)}")
    p_d = _distribution("p_d", p_d, positive=False)
    if loss in ("ns_uni", "sce"):
        return p_d.clone()
    if loss in ("sans", "sce_ls"):
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {lam}")
        return (1.0 - lam) * p_d + lam / p_d.shape[-1]
    if p_n is None:
        raise ValueError(f"loss {loss!r} needs a noise distribution p_n")
    q = p_d / t_xy(p_d, p_n)  # (X, Y), eq. 9
    return q / q.sum(dim=-1, keepdim=True)


def sans_fixed_point(p_d: torch.Tensor, *, alpha: float) -> torch.Tensor:
    """Self-consistent solution of eq. 10 with ``p_θ̂`` of eq. 14: ``p_θ ∝ p_d^{1/(1+α)}``.

    Not in the paper, which calls eq. 10 implicit: with free scores, ``p_θ̂ = softmax(α f) ∝
    p_θ^α``, so eq. 10 reads ``p_θ ∝ p_d / p_θ^α``. ``α = 0`` gives eq. 11 (``p_d``), ``α → ∞``
    gives eq. 12 (uniform): a tempered ``p_d``, smoothed like eq. 13 but not a mixture.

    Args:
        p_d: ``(X, Y)`` or ``(Y,)`` conditional, rows sum to 1. alpha: SANS temperature ``>= 0``.

    Returns:
        float64 tensor of ``p_d``'s shape, rows sum to 1.

    Raises:
        ValueError: invalid ``p_d`` or negative ``alpha``.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    q = _distribution("p_d", p_d, positive=False) ** (1.0 / (1.0 + alpha))
    return q / q.sum(dim=-1, keepdim=True)


@dataclass(frozen=True)
class Potential:
    """A strictly convex Bregman generator ``Ψ`` with its analytic derivative ``Ψ'``.

    Call it for ``Ψ(z)``; ``grad(z)`` is ``Ψ'(z)``. Both map a tensor (or float) elementwise to a
    float64 tensor of the same shape. ``domain`` is the open interval of ``z`` where it is defined.
    """

    name: str
    value: Callable[[torch.Tensor], torch.Tensor]
    grad: Callable[[torch.Tensor], torch.Tensor]
    domain: tuple[float, float]

    def __call__(self, z: TensorLike) -> torch.Tensor:
        return self.value(torch.as_tensor(z, dtype=torch.float64))


def _sce_value(z: torch.Tensor) -> torch.Tensor:
    return torch.xlogy(z, z) + torch.xlogy(1.0 - z, 1.0 - z)


def _sce_grad(z: torch.Tensor) -> torch.Tensor:
    return torch.log(z) - torch.log1p(-z)  # logit(z)


def _ns_value(z: torch.Tensor) -> torch.Tensor:
    return torch.xlogy(z, z) - (1.0 + z) * torch.log1p(z)


def _ns_grad(z: torch.Tensor) -> torch.Tensor:
    return torch.log(z) - torch.log1p(z)


psi_sce = Potential("sce", _sce_value, _sce_grad, (0.0, 1.0))
"""``Ψ(z) = z log z + (1 - z) log(1 - z)`` on ``[0, 1]``: SCE's ``sum_i z_i log z_i`` for two labels
(paper 002, footnote 3). ``Ψ'(z) = log z - log(1 - z)``."""

psi_ns = Potential("ns", _ns_value, _ns_grad, (0.0, float("inf")))
"""``Ψ(z) = z log z - (1 + z) log(1 + z)`` on ``z > 0`` (paper 002, eq. 7, Prop. 1: NS).
``Ψ'(z) = log z - log(1 + z)``."""


def bregman(psi: Potential, f: TensorLike, g: TensorLike) -> torch.Tensor:
    """``d_Ψ(f, g) = Ψ(f) - Ψ(g) - Ψ'(g) (f - g)`` elementwise (paper 002, eq. 2), float64.

    Args:
        psi: :data:`psi_sce`, :data:`psi_ns` or another :class:`Potential`.
        f: target value(s); g: model value(s); tensors or floats, broadcastable, inside
            ``psi.domain`` (``g`` strictly inside: ``Ψ'`` diverges at the boundary).

    Returns:
        ``d_Ψ(f, g) >= 0`` (nats), broadcast shape of ``f`` and ``g``; 0 iff ``f == g``.
    """
    f_t = torch.as_tensor(f, dtype=torch.float64)
    g_t = torch.as_tensor(g, dtype=torch.float64)
    return psi.value(f_t) - psi.value(g_t) - psi.grad(g_t) * (f_t - g_t)


def figure1(path: Path, *, target: float = 0.5, points: int = 999) -> Path:
    """Figure 1 of paper 002: ``d_Ψ(target, p)`` against ``p ∈ (0, 1)`` for SCE's and NS's ``Ψ``.

    Args:
        path: output PNG (parent folders are created).
        target: the fixed first argument (0.5 in the paper).
        points: number of ``p`` values on the open interval.

    Returns:
        ``path``.

    Raises:
        ValueError: ``target`` outside ``(0, 1)``.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be in (0, 1), got {target}")
    from embedlab.plots import new_figure, save_png

    p = torch.linspace(0.0, 1.0, points + 2, dtype=torch.float64)[1:-1]  # open interval
    fig, ax = new_figure((5.6, 4.0))
    for psi, label in (
        (psi_sce, r"SCE: $\Psi(z)=z\log z+(1-z)\log(1-z)$"),
        (psi_ns, r"NS: $\Psi(z)=z\log z-(1+z)\log(1+z)$"),
    ):
        ax.plot(p.numpy(), bregman(psi, target, p).numpy(), label=label)
    ax.set_xlabel("$p$")
    ax.set_ylabel(rf"$d_\Psi({target:g}, p)$ (nats)")
    ax.set_title(rf"Bregman divergence between {target:g} and $p$ (paper 002, fig. 1)")
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, path)
