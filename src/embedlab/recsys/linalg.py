"""Linear algebra for the ALS / GRALS half-steps: Laplacian layouts, batched Cholesky with
jitter, SPD block inverses and preconditioned conjugate gradient (see :mod:`embedlab.recsys.als`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

CG_TOLERANCE = 1e-6
"""CG stops once the recursively updated relative residual ``|B - A x| / |B|`` is at most this."""


@dataclass(frozen=True)
class HalfStepInfo:
    """What a half-step did: CG ``iterations`` run and the final ``relative_residual``
    ``|B - A x| / |B|``, recomputed from ``x`` (both 0 for the closed-form solve, which is exact up
    to rounding)."""

    iterations: int
    relative_residual: float


def prepare_laplacian(lap: Tensor, num_rows: int, *, like: Tensor) -> Tensor:
    """``lap`` as a coalesced sparse COO (or dense) ``(N, N)`` tensor of ``like``'s dtype/device."""
    if lap.shape != (num_rows, num_rows):
        raise ValueError(f"Laplacian {tuple(lap.shape)} does not match {num_rows} table rows")
    lap = lap.to(dtype=like.dtype, device=like.device)
    if lap.layout == torch.strided:
        return lap
    return lap.to_sparse_coo().coalesce() if lap.layout != torch.sparse_coo else lap.coalesce()


def diagonal(lap: Tensor) -> Tensor:
    """``(N,)`` diagonal of a dense or coalesced COO ``(N, N)`` matrix."""
    if lap.layout == torch.strided:
        return lap.diagonal().clone()
    index, values = lap.indices(), lap.values()
    on_diag = index[0] == index[1]
    return values.new_zeros(lap.shape[0]).index_add_(0, index[0][on_diag], values[on_diag])


_MAX_JITTER_TRIES = 12


def cholesky(a: Tensor) -> Tensor:
    """Batched Cholesky factors of ``(B, k, k)`` SPD matrices; a block that fails (semidefinite
    when λ = 0 and ``n_u < k``) is retried with a growing jitter ``eps · k · max diag · 100^t``."""
    chol, info = torch.linalg.cholesky_ex(a)
    bad = torch.nonzero(info).squeeze(1)
    k = a.shape[-1]
    jitter = torch.finfo(a.dtype).eps * k
    for _ in range(_MAX_JITTER_TRIES):
        if not bad.numel():
            return chol
        sub = a.index_select(0, bad)  # (b, k, k)
        scale = sub.diagonal(dim1=1, dim2=2).abs().amax(1).clamp_min(1.0) * jitter  # (b,)
        sub = sub + scale.view(-1, 1, 1) * torch.eye(k, dtype=a.dtype, device=a.device)
        fixed, info = torch.linalg.cholesky_ex(sub)
        chol.index_copy_(0, bad, fixed)
        bad = bad[info != 0]
        jitter *= 100.0
    if bad.numel():
        raise ValueError(f"{bad.numel()} normal-equation blocks are not positive definite (NaN?)")
    return chol


def pcg(
    matvec: Callable[[Tensor], Tensor],
    apply_precond: Callable[[Tensor], Tensor],
    rhs: Tensor,
    x: Tensor,
    *,
    max_iter: int,
) -> tuple[Tensor, HalfStepInfo]:
    """Preconditioned conjugate gradient (Saad, "Iterative Methods", alg. 9.1) for ``A x = rhs``
    from ``x`` (updated in place), all ``(N, k)``; stops after ``max_iter`` steps or once the
    relative residual is at most :data:`CG_TOLERANCE`."""
    b_norm = float(rhs.norm())
    if b_norm == 0.0:
        return x.zero_(), HalfStepInfo(0, 0.0)
    r = rhs - matvec(x)
    residual = float(r.norm()) / b_norm
    steps = 0
    if residual <= CG_TOLERANCE:
        return x, HalfStepInfo(steps, residual)
    p = apply_precond(r)
    rz = (r * p).sum()
    while True:
        ap = matvec(p)
        alpha = rz / (p * ap).sum()
        x.add_(alpha * p)
        r.sub_(alpha * ap)
        steps += 1
        residual = float(r.norm()) / b_norm
        if steps >= max_iter or residual <= CG_TOLERANCE:
            true_residual = float((rhs - matvec(x)).norm()) / b_norm  # r drifts from it
            return x, HalfStepInfo(steps, true_residual)
        z = apply_precond(r)
        rz_next = (r * z).sum()
        p = z.add_(p, alpha=float(rz_next / rz))
        rz = rz_next


def spd_inverse(a: Tensor) -> Tensor:
    """Inverses ``(B, k, k)`` of SPD blocks as ``L^-T L^-1`` from their Cholesky factors ``L``
    (several times faster than ``torch.cholesky_inverse`` on CPU)."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device).expand_as(a)
    chol_inv = torch.linalg.solve_triangular(cholesky(a), eye, upper=False)  # L^-1
    return torch.bmm(chol_inv.transpose(1, 2), chol_inv)


def fast_matmul_layout(lap: Tensor) -> Tensor:
    """A COO Laplacian as CSR for the repeated ``lap @ X`` (faster than COO on CPU); dense as is."""
    if lap.layout != torch.sparse_coo:
        return lap
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return lap.to_sparse_csr()
