"""Per-module gradient norms of a PTB KD-code LM run before the global clip (docs/kd.md, figure 1):
which parameters the clip (``train.clip``) scales, and how often, with the linear and the LSTM
composition.

Runs ``train_lm`` for ``--epochs`` epochs of the first ``--batches`` training batches each (``0``:
whole epochs; the config's lr schedule) in a temporary run directory, reading every step's gradients just before
:class:`~embedlab.training.callbacks.ClipGradNorm` clips them. Parameters are grouped by name: the
first dotted part, up to three under ``token_embedding`` (:func:`group_of`). Writes (merges) one entry per ``--label``
into ``--out``: the command, the total norm's median and quartiles, the fraction of steps the clip
scaled, and each group's median norm and median share of the total squared norm, for the first
and the last quarter of the steps and (``per_epoch``) for each epoch.

Usage::

    EMBEDLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/kd_lm_grad_norms.py \\
        --label lstm-d16 --teacher runs/kd-lm/full --batches 600 --out docs/bench/kd_lm_grad_norms.json \\
        --set token_embedding.kd.composition=lstm --set token_embedding.kd.code_dim=16
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from embedlab.config.io import build_typed_config
from embedlab.lm.config import LmConfig
from embedlab.lm.run import train_lm
from embedlab.training.callbacks import ClipGradNorm

RECIPE = Path("configs/lm/ptb/kd-ablation/6-pdg-autoencode.yaml")


def group_of(name: str) -> str:
    """``lstm.weight_hh_l0`` -> ``lstm``; ``token_embedding.compose.lstm.weight_ih_l0`` ->
    ``token_embedding.compose.lstm``; ``token_embedding.encoder.0.weight`` ->
    ``token_embedding.encoder``."""
    parts = name.split(".")
    if parts[0] != "token_embedding":
        return parts[0]
    return ".".join(p for p in parts[:3] if not p.isdigit() and p not in ("weight", "bias"))


def record_norms(steps: list[dict[str, Any]]) -> None:
    """Patch ClipGradNorm so that each call first appends ``{"total", "groups"}`` to ``steps``."""
    original = ClipGradNorm.after_backward

    def after_backward(self: ClipGradNorm, loop: Any) -> None:
        squares: dict[str, float] = {}
        for name, p in loop.task.model.named_parameters():
            if p.grad is not None:
                g = group_of(name)
                squares[g] = squares.get(g, 0.0) + float(p.grad.detach().float().pow(2).sum())
        steps.append({"total": sum(squares.values()) ** 0.5, "clip": self.max_norm,
                      "epoch": loop.state.epoch,
                      "groups": {g: s**0.5 for g, s in squares.items()}})  # fmt: skip
        original(self, loop)

    ClipGradNorm.after_backward = after_backward


def summarize(steps: list[dict[str, Any]]) -> dict[str, Any]:
    q = max(1, len(steps) // 4)

    def groups(part: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
        names = sorted({g for s in part for g in s["groups"]})
        return {g: {"median_norm": statistics.median(s["groups"].get(g, 0.0) for s in part),
                    "median_share": statistics.median(
                        (s["groups"].get(g, 0.0) / s["total"]) ** 2 if s["total"] else 0.0
                        for s in part)} for g in names}  # fmt: skip

    def overall(part: list[dict[str, Any]]) -> dict[str, Any]:
        totals = [s["total"] for s in part]
        quartiles = statistics.quantiles(totals, n=4) if len(totals) > 1 else totals * 3
        return {"steps": len(part), "total_norm_quartiles": quartiles,
                "clipped_fraction": sum(s["total"] > s["clip"] for s in part) / len(part)}  # fmt: skip

    epochs = sorted({s["epoch"] for s in steps})
    per_epoch = {}
    for epoch in epochs:
        part = [s for s in steps if s["epoch"] == epoch]
        per_epoch[str(epoch)] = overall(part) | {"groups": groups(part)}
    return {**overall(steps), "clip": steps[0]["clip"] if steps else None,
            "first_quarter": groups(steps[:q]), "last_quarter": groups(steps[-q:]),
            "per_epoch": per_epoch}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="the entry's key in --out")
    parser.add_argument("--config", type=Path, default=RECIPE, help="LM config (row 6's recipe)")
    parser.add_argument(
        "--teacher", type=Path, default=None, help="train.init_from (PDG teacher run)"
    )
    parser.add_argument(
        "--batches", type=int, default=600, help="training batches per epoch (0: whole epochs)"
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs (the config's lr schedule)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="JSON to merge the entry into")
    args = parser.parse_args(argv)
    overrides = [*args.set, f"train.max_epochs={args.epochs}", f"train.num_threads={args.threads}"]
    if args.batches:
        overrides.append(f"train.max_batches={args.batches}")
    if args.teacher is not None:
        overrides.append(f"train.init_from={args.teacher}")
    config = build_typed_config(LmConfig, path=args.config, overrides=overrides)
    if config.train.clip is None:
        sys.exit("the config has no train.clip: nothing to record")
    steps: list[dict[str, Any]] = []
    record_norms(steps)
    torch.manual_seed(config.seed)
    with tempfile.TemporaryDirectory() as run:
        train_lm(config, Path(run) / "run", progress=False)
    entry = {"command": " ".join(["benchmarks/kd_lm_grad_norms.py", *(argv or sys.argv[1:])]),
             "config": str(args.config), "overrides": overrides, **summarize(steps)}  # fmt: skip
    data = json.loads(args.out.read_text()) if args.out.is_file() else {}
    data[args.label] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(
        json.dumps(
            {args.label: {k: entry[k] for k in ("total_norm_quartiles", "clipped_fraction")}}
        )
    )
    return entry


if __name__ == "__main__":
    main()
