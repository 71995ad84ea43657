"""The LM training objective and perplexity (the model returns logits; the loss lives here)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from embedlab.lm.data import windows
from embedlab.lm.model import LstmLm, State


@dataclass
class WindowLoss:
    """One truncated-BPTT window.

    Attributes:
        loss: what is minimized: token NLL summed over time, averaged over the batch, plus the
            tables' penalties (scalar, with autograd history).
        nll_sum: summed token NLL (float, nats). tokens: predictions made (``B * t``).
        state: the LSTM state after the window (still attached).
    """

    loss: torch.Tensor
    nll_sum: float
    tokens: int
    state: State


def perplexity(mean_nll: float) -> float:
    """``exp(mean_nll)``; ``inf`` where that overflows (a diverged model)."""
    return math.exp(mean_nll) if mean_nll < 700 else math.inf


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``-log softmax(logits)[target]`` per position: ``(B, T, V), (B, T) -> (B, T)``."""
    flat = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    )
    return flat.reshape(targets.shape)


def window_loss(
    model: LstmLm,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    state: State | None,
    *,
    penalty: bool = True,
) -> WindowLoss:
    """Forward one window ``inputs, targets: (B, t)`` from ``state`` and score it.

    The NLL is summed over the ``t`` steps and averaged over the ``B`` streams, as in Zaremba et
    al.'s Torch code (one gradient of 1 per time step of a batch-averaged criterion) and
    TensorFlow's PTB tutorial; their learning rate 1 assumes this scale. ``penalty`` False
    leaves the tables' penalty out (a data-parallel step adds it for the global window).
    """
    logits, new_state = model(inputs, state)  # (B, t, V)
    nll = token_nll(logits, targets)  # (B, t)
    loss = nll.sum() / inputs.shape[0]
    if penalty:
        loss = loss + model.penalty(inputs, targets)
    return WindowLoss(
        loss=loss, nll_sum=float(nll.detach().sum()), tokens=targets.numel(), state=new_state
    )


@torch.no_grad()
def evaluate_stream(model: LstmLm, data: torch.Tensor, bptt: int) -> dict[str, float]:
    """Perplexity of ``model`` on ``data (B, T)`` (from :func:`~embedlab.lm.data.batchify`).

    Each row is read from a zero state to its end, the state carried across windows (so the
    result does not depend on ``bptt``): ``perplexity = exp(mean NLL)`` over the ``B (T - 1)``
    predicted tokens. Runs in eval mode (no dropout, no SSE); the mode is restored afterwards.

    Returns:
        ``{"perplexity", "loss" (mean NLL, nats), "tokens"}``.
    """
    was_training = model.training
    model.eval()
    state: State | None = None
    total, count = 0.0, 0
    for inputs, targets in windows(data, bptt):
        logits, state = model(inputs, state)
        total += float(token_nll(logits, targets).double().sum())
        count += targets.numel()
    model.train(was_training)
    mean = total / count
    return {"perplexity": perplexity(mean), "loss": mean, "tokens": count}
