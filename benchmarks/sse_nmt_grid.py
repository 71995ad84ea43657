"""SSE-SE on a Transformer (paper 001, section 5.2) on Multi30K En->De: baseline vs SSE-SE, 3 seeds
each, and a small p sweep; one ``embedlab nmt train`` process per run, resumable; each finished run
lands in ``--json`` at once.

Cells, in this order so that a partial grid is still a paired comparison: ``base-s<seed>`` and
``sse-p0.01-s<seed>`` for each seed (configs/nmt/multi30k/transformer-small{,-sse}.yaml: identical but
for SSE-SE on the source and target input ids), then ``sse-p<p>-s0`` for the sweep's other p.
Every run trains for ``--epochs`` epochs (default 30, the configs' own; ``train.max_epochs``) in
``--precision`` (default bf16 autocast, fp32 master weights and loss), then
the last 5 epoch checkpoints are averaged and beam-4 BLEU is measured on valid and test. The budget
is epochs, so the machine's load changes only the wall time: ``--parallel 2 --threads 1`` trains
two runs at once on 2 cores, and a run resumed in another session continues where it stopped.
``--minutes M`` adds a wall-clock limit (``train.max_minutes``; whichever comes first), which makes
a run's result depend on the machine: it needs the machine to itself and ``--parallel 1``.
``<runs>/PAUSE`` holds the next run, finished runs are skipped, a killed run resumes from its last
checkpoint, and a JSON written under another budget is refused (benchmarks/cell_queue.py). Mean +-
sd and curves: benchmarks/sse_nmt_report.py.

Usage::

    LD_PRELOAD=/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
    EMBEDLAB_DATA_DIR=../shared/datasets nohup python benchmarks/sse_nmt_grid.py \
        --runs runs/nmt --json runs/nmt/sse-nmt-multi30k.json --threads 1 --parallel 2 \
        >> runs/nmt/grid.log 2>&1 &
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path
from typing import Any

from cell_queue import Job, drain, train_cell
from grid_args import grid_parser, parse_grid_args, positive_int, refuse_overrides

CONFIGS = Path("configs/nmt/multi30k")
SWEEP = (0.003, 0.03, 0.1)  # besides the paper's p = 0.01


def cells(seeds: list[int]) -> list[dict[str, Any]]:
    """``key``, ``variant``, ``p`` (None: baseline), ``seed``, ``config``, ``overrides``."""
    out: list[dict[str, Any]] = []
    for seed in seeds:
        out.append({"key": f"base-s{seed}", "variant": "baseline", "p": None, "seed": seed,
                    "config": CONFIGS / "transformer-small.yaml", "overrides": []})  # fmt: skip
        out.append({"key": f"sse-p0.01-s{seed}", "variant": "sse-se", "p": 0.01, "seed": seed,
                    "config": CONFIGS / "transformer-small-sse.yaml", "overrides": []})  # fmt: skip
    for p in SWEEP:
        sets = [f"source_embedding.sse.p={p}", f"target_embedding.sse.p={p}"]
        out.append({"key": f"sse-p{p}-s{seeds[0]}", "variant": "sse-se", "p": p, "seed": seeds[0],
                    "config": CONFIGS / "transformer-small-sse.yaml", "overrides": sets})  # fmt: skip
    return out


def nmt_fields(metrics: dict[str, Any]) -> dict[str, Any]:
    """What a row keeps of a run's metrics.json."""
    keep = ("bleu", "loss", "perplexity", "sacrebleu_signature")
    row: dict[str, Any] = {
        split: {k: metrics[split].get(k) for k in keep} for split in ("valid", "test")
    }
    row["selected"] = metrics.get("selected")
    row["timing"] = {k: metrics["timing"].get(k) for k in ("epochs", "train_seconds", "rows_per_s")}
    return row


def run_cell(cell: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    sets = [*cell["overrides"], f"seed={cell['seed']}", f"train.max_epochs={args.epochs}",
            f"train.num_threads={args.threads}", f"train.precision={args.precision}",
            *args.set]  # fmt: skip
    if args.minutes is not None:
        sets.append(f"train.max_minutes={args.minutes}")
    fields = {k: str(v) if k == "config" else v for k, v in cell.items() if k != "key"}
    fields |= {"threads": args.threads, "parallel": args.parallel, "precision": args.precision}
    return train_cell(embedlab=args.embedlab, runs=args.runs, key=cell["key"], task="nmt",
                      config=cell["config"], sets=sets, options=["--no-progress"], fields=fields,
                      extract=nmt_fields,
                      quality=lambda r: f"test BLEU {r.get('test', {}).get('bleu')}")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = grid_parser(__doc__.splitlines()[0], runs="runs/nmt",
                         json_path="runs/nmt/sse-nmt-multi30k.json", parallel=True)  # fmt: skip
    parser.add_argument("--epochs", type=positive_int, default=30, help="training epochs per run")
    parser.add_argument("--minutes", type=float, default=None,
                        help="also a wall-clock limit per run (needs --parallel 1)")  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16",
                        help="train.precision of every run (default bf16: autocast of the "
                             "training forward pass; 1.3x fp32's steps/s on an AMX CPU, "
                             "docs/nmt.md; use fp32 on a CPU without bf16 units)")  # fmt: skip
    args = parse_grid_args(parser, argv)
    if args.minutes is not None and args.parallel > 1:
        parser.error("--minutes with --parallel > 1: runs sharing the cores would each train "
                     "less within the same minutes; use an epochs budget")  # fmt: skip
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # with an epochs budget, threads and parallel runs change the wall time only: recorded per
    # row; a wall-clock limit makes the threads part of the budget
    budget = {"epochs": args.epochs, "train_minutes": args.minutes, "precision": args.precision,
              "threads": args.threads if args.minutes is not None else None,
              "extra_overrides": list(args.set), "machine": f"{os.cpu_count()} cores",
              "includes": "training + per-epoch validation; checkpoint averaging and beam-4 "
                          "valid/test decoding on top"}  # fmt: skip
    selected = [c for c in cells(args.seeds) if args.only is None or c["key"] in args.only]
    taken = {"seed", "train.max_epochs", "train.max_minutes", "train.num_threads",
             "train.precision"}  # fmt: skip
    refuse_overrides(
        args.set, taken | {o.split("=", 1)[0] for c in selected for o in c["overrides"]}
    )
    jobs = [Job(key=c["key"], run=partial(run_cell, c, args)) for c in cells(args.seeds)]
    drain(jobs, json_path=args.json, runs=args.runs, budget=budget, only=args.only,
          same_budget=("epochs", "train_minutes", "threads", "precision", "extra_overrides"),
          list_only=args.list, parallel=args.parallel)  # fmt: skip


if __name__ == "__main__":
    main()
