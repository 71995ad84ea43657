"""Devices and precision: the ``device`` key, bf16 autocast, and per-device RNG states."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from embedlab.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` as given.

    Raises:
        UserError: CUDA asked for where none is available, or ``cuda:N`` beyond the device count.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device={name}: CUDA is not available here; use device=cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(
                f"device={name}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    return device


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """bf16 autocast of the enclosed forward pass when ``precision == "bf16"``; a no-op for fp32.

    Matmuls run in bf16; reductions that autocast keeps in fp32 (softmax, log-softmax,
    cross-entropy) stay there, and the loop back-propagates the fp32 loss.
    """
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield


def rng_state(generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """The RNG states a checkpoint stores: torch's CPU RNG, the shuffling generator and, on a
    CUDA device, that device's RNG (SSE, dropout and samplers draw there)."""
    states = {"torch": torch.get_rng_state(), "shuffle": generator.get_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_state(
    states: dict[str, torch.Tensor], generator: torch.Generator, device: torch.device
) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(states["torch"].cpu())
    generator.set_state(states["shuffle"].cpu())
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"].cpu(), device)
