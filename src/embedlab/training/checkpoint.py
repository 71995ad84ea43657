"""Checkpoints: tensors in safetensors, everything else in JSON (no pickle).

``RUN_DIR/checkpoints/{last,best}.safetensors`` holds the tensors *and* the JSON state (epoch,
optimizer hyper-parameters, scheduler, counters) in its header, written to a temporary name and
renamed: one atomic step, so a run killed while saving keeps its previous, consistent checkpoint.
``{last,best}.json`` is a readable copy of that state, written afterwards; loading never reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _split_optimizer_state(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, pstate in state["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value.cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    rng: dict[str, torch.Tensor] | None = None,
    state: dict[str, Any] | None = None,
    write: bool = True,
) -> None:
    """Write ``path.safetensors`` (model, optimizer tensors, RNG states, JSON state in the header)
    and a readable copy of the state in ``path.json``.

    ``state`` must be JSON-serializable (epoch, scheduler state, early-stopping counters).
    ``write`` False collects the tensors without writing: in a data-parallel job every rank
    calls this (a sharded table's ``state_dict`` is a collective) and rank 0 alone writes.
    """
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if not write:
        return
    meta: dict[str, Any] = {"state": state or {}}
    if optimizer is not None:
        opt_tensors, meta["optimizer"] = _split_optimizer_state(optimizer)
        tensors.update(opt_tensors)
    for key, value in (rng or {}).items():
        tensors[f"rng.{key}"] = value.cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.safetensors")
    save_file(tensors, str(tmp), metadata={"embedlab": json.dumps(meta)})
    os.replace(tmp, path.with_suffix(".safetensors"))
    _atomic_write_json(path.with_suffix(".json"), meta)


def load_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: torch.device | str = "cpu",
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore model (and optimizer) from ``path``; return ``(rng tensors, state)``.

    Tensors are read onto ``map_location`` (the run's device; RNG states stay on the CPU).
    """
    file = str(path.with_suffix(".safetensors"))
    tensors = load_file(file, device=str(map_location))
    with safe_open(file, framework="pt") as handle:
        header = (handle.metadata() or {}).get("embedlab")
    if header is None:  # checkpoints written before the state moved into the header
        header = path.with_suffix(".json").read_text(encoding="utf-8")
    meta = json.loads(header)
    missing, unexpected = model.load_state_dict(
        {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=False
    )
    # a row-wise sharded table's fused optimizer state is not part of a plain table's state
    unexpected = [k for k in unexpected if ".optimizer_state." not in k]
    if missing or unexpected:
        raise RuntimeError(
            f"checkpoint does not fit the model: missing {missing}, unexpected {unexpected}"
        )
    if optimizer is not None and "optimizer" in meta:
        per_param: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                per_param.setdefault(int(pid), {})[name] = value
        for key, value in meta["optimizer"]["scalars"].items():
            pid, name = key.split(".", 1)
            per_param.setdefault(int(pid), {})[name] = value
        optimizer.load_state_dict(
            {"state": per_param, "param_groups": meta["optimizer"]["param_groups"]}
        )
    rng = {k[4:]: v.cpu() for k, v in tensors.items() if k.startswith("rng.")}
    return rng, meta["state"]


def checkpoint_exists(path: Path) -> bool:
    return path.with_suffix(".safetensors").is_file()
