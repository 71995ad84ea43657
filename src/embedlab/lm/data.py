"""Token streams as parallel columns and truncated-BPTT windows over them.

``batchify`` cuts a stream of ``N`` tokens into ``B`` contiguous streams (rows) of
``T = N // B`` tokens (the last ``N mod B`` tokens are dropped, as in Zaremba et al.'s code).
Windows advance along the time axis; the LSTM state is carried from one window to the next of
the same pass and detached at each window boundary (truncated BPTT).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``ids (N,)`` -> ``(batch_size, N // batch_size)``; row ``b`` is
    ``ids[b * T : (b + 1) * T]``.

    Raises:
        ValueError: fewer than two tokens per row (nothing to predict).
    """
    length = ids.numel() // batch_size
    if length < 2:
        raise ValueError(
            f"{ids.numel()} tokens give {length} per stream at batch size {batch_size}; "
            "need at least 2"
        )
    return ids[: batch_size * length].reshape(batch_size, length)  # (B, T)


def num_windows(length: int, bptt: int) -> int:
    """Windows of at most ``bptt`` steps over streams of ``length`` tokens (``length - 1``
    predictions each): ``ceil((length - 1) / bptt)``."""
    return -(-(length - 1) // bptt)


def windows(data: torch.Tensor, bptt: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs, targets)``, each ``(B, t)`` with ``t <= bptt``: ``data[:, i : i + t]`` and
    ``data[:, i + 1 : i + 1 + t]`` for ``i = 0, bptt, 2 bptt, ...``; the last window is shorter
    when ``bptt`` does not divide ``T - 1``. Every token but the first of a row is a target once.
    """
    length = data.shape[1]
    for start in range(0, length - 1, bptt):
        steps = min(bptt, length - 1 - start)
        yield data[:, start : start + steps], data[:, start + 1 : start + 1 + steps]


def detach_state(state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The LSTM state ``(h, c)`` without its autograd history (the BPTT truncation)."""
    return state[0].detach(), state[1].detach()
