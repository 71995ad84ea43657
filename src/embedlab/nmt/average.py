"""Checkpoint averaging (the SSE paper's section 5.2: "we average last 5 checkpoints"; Vaswani et
al. 2017) over the per-epoch model snapshots ``RUN_DIR/checkpoints/epoch-NNNN.safetensors``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

SNAPSHOT = re.compile(r"^epoch-(\d+)\.safetensors$")


def snapshot_path(folder: Path, epoch: int) -> Path:
    return folder / f"epoch-{epoch:04d}.safetensors"


def snapshots(folder: Path) -> list[Path]:
    """The epoch snapshots in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := SNAPSHOT.match(p.name))]
    return [p for _, p in sorted(found)]


def save_snapshot(folder: Path, epoch: int, model: torch.nn.Module, *, keep: int) -> Path:
    """Write the model's tensors as ``epoch-NNNN.safetensors`` (atomically) and delete all but
    the newest ``keep`` snapshots."""
    folder.mkdir(parents=True, exist_ok=True)
    path = snapshot_path(folder, epoch)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)
    existing = snapshots(folder)  # oldest first; ``path`` is the newest
    for old in existing[: max(0, len(existing) - keep)]:
        old.unlink()
    return path


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors (accumulated in float64, cast back); other
    tensors (integer buffers) are taken from the last state.

    Raises:
        ValueError: no states, or states with different keys.
    """
    if not states:
        raise ValueError("nothing to average")
    keys = states[-1].keys()
    if any(s.keys() != keys for s in states):
        raise ValueError("the checkpoints hold different tensors")
    out: dict[str, torch.Tensor] = {}
    for key in keys:
        last = states[-1][key]
        if not last.is_floating_point():
            out[key] = last.clone()
            continue
        total = torch.zeros_like(last, dtype=torch.float64)
        for state in states:
            total += state[key].double()
        out[key] = (total / len(states)).to(last.dtype)
    return out


def average_last(folder: Path, n: int) -> tuple[dict[str, torch.Tensor], list[Path]]:
    """The mean of the newest ``n`` snapshots (fewer if fewer exist) and their paths."""
    chosen = snapshots(folder)[-n:]
    return average_state_dicts([load_file(str(p)) for p in chosen]), chosen


def write_average(path: Path, state: dict[str, torch.Tensor]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    tmp.replace(path)
