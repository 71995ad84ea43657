"""The fast lookup of a linear KD composition: one ``embedding_bag`` over projected code tables.

Paper 003's linear composition is ``v = P (sum_j W^j[c^j]) + b`` (or the mean over j), so
``v = sum_j T_j[c^j]`` with the projected tables ``T_j = W^j P^T`` (``(K, d)`` each) and ``b``
folded into ``T_1``. Stacked, ``T`` is ``(D*K, d)`` and row i is the sum of the D rows
``j*K + c_i^j``: a fixed-size bag, which ``torch.embedding_bag(mode="sum")`` computes in one
kernel (FBGEMM on CPU) straight from the small integer codes, without the ``(B, D, d')`` code
vectors or a ``(B, d') x (d', d)`` product. Per row: D row reads of width d instead of
``D*d' + d'*d`` multiply-adds.
"""

from __future__ import annotations

import torch
from torch import nn

from embedlab.embeddings.kd_compose import LinearComposition
from embedlab.errors import UserError


def position_offsets(K: int, D: int, *, device: torch.device | None = None) -> torch.Tensor:
    """``(D,)`` the first row of each position's table in ``T``: ``[0, K, 2K, ...]``; int32
    (the dtype ``embedding_bag`` then takes for its indices) unless ``D*K`` needs int64."""
    dtype = torch.int32 if D * K < 2**31 else torch.int64
    return torch.arange(D, dtype=dtype, device=device) * K


def projected_table(codebook: torch.Tensor, compose: nn.Module, *, D: int) -> torch.Tensor:
    """``T (D*K, d)``: row ``j*K + k`` is ``P W^j[k] * s`` (``s = 1`` for ``reduce: sum``,
    ``1/D`` for ``mean``), plus the bias ``b`` on the rows of position 0. Computed in float64
    and rounded once to float32 (a bfloat16 table was tried: on this CPU the saving in the
    ``embedding_bag`` was eaten by the conversion of its output to float32).

    Args:
        codebook: ``(D or 1, K, d')`` (a shared one is expanded). compose: the composition.

    Raises:
        UserError: the composition is not linear.
    """
    if type(compose) is not LinearComposition:
        raise UserError("fast_linear needs kd.composition=linear")
    scale = 1.0 if compose.reduce == "sum" else 1.0 / D
    with torch.no_grad():
        book = codebook.detach().double().expand(D, -1, -1)  # (D, K, d')
        table = book @ compose.proj.weight.detach().double().T * scale  # (D, K, d)
        table[0] += compose.proj.bias.detach().double()
    return table.reshape(-1, compose.dim).float().contiguous()  # (D*K, d)


def bag_lookup(table: torch.Tensor, codes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``sum_j table[offsets[j] + codes[:, j]]``: ``codes (B, D)`` uint8/int16/int32,
    ``table (D*K, d)``, ``offsets (D,)`` -> ``(B, d)`` in the table's dtype.

    One fused ``add`` (small codes + int32 offsets -> int32 rows), one ``embedding_bag`` with
    fixed bags of D (``include_last_offset``: the ``(B+1,)`` bag starts are passed as is).
    """
    B, D = codes.shape
    rows = torch.add(codes, offsets).view(-1)  # (B*D,) int32 rows of the table
    starts = torch.arange(0, (B + 1) * D, D, dtype=rows.dtype, device=rows.device)  # (B+1,)
    # torch.embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode (0: sum), sparse,
    # per_sample_weights, include_last_offset): F.embedding_bag minus its Python checks.
    return torch.embedding_bag(table, rows, starts, False, 0, False, None, True)[0]  # (B, d)


def out_of_range(ids: torch.Tensor, num_rows: int) -> IndexError:
    """The error for a lookup ``ids`` with an entry outside ``[0, num_rows)``."""
    low, high = (int(v) for v in torch.aminmax(ids)) if ids.numel() else (0, 0)
    return IndexError(
        f"KD-code lookup: ids must be in [0, {num_rows}) (the table's rows); "
        f"got ids from {low} to {high}"
    )
