"""bf16 vs fp32 training throughput (``train.precision``), WN18RR ComplEx+SCE 1vsAll.

One process, interleaved: for each of ``--repeats`` rounds, ``--batches`` timed training steps in
fp32, then the same number in bf16 (autocast, as the loop runs them), after 3 warm-up steps each;
the model and optimizer are rebuilt from the same seed for every block, so both precisions train
the same batches. Reports the median rows/s of each and their ratio (machines here are shared:
quote the ratio).

Usage: ``EMBEDLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/precision_throughput.py
--out docs/bench/precision_throughput.json``. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from embedlab.datasets.kg import load_kg
from embedlab.evaluation.kge_eval import known_answers
from embedlab.kge.config import build_config
from embedlab.kge.run import build_model
from embedlab.kge.training_types import build_task
from embedlab.training.device import autocast
from embedlab.training.optim import build_optimizer

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "kge" / "wn18rr" / "complex-sce.yaml"


def rows_per_s(precision: str, batches: int) -> float:
    cfg = build_config(path=CONFIG)
    ds = load_kg("wn18rr")
    torch.manual_seed(0)
    model = build_model(cfg, ds)
    task = build_task(
        model=model,
        dataset=ds,
        known=known_answers(ds.all_triples(), ds.num_relations),
        config=cfg,
    )
    optimizer = build_optimizer(model.parameters(), name=cfg.train.optimizer, lr=cfg.train.lr)
    stream = task.batches(torch.Generator().manual_seed(0))
    device = torch.device("cpu")

    def step() -> int:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            out = task.train_step(next(stream))
        out.loss.float().backward()
        optimizer.step()
        return out.rows

    for _ in range(3):
        step()
    start, rows = time.perf_counter(), 0
    for _ in range(batches):
        rows += step()
    return rows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    runs: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.repeats):
        for precision in runs:
            runs[precision].append(rows_per_s(precision, args.batches))
    median = {p: statistics.median(r) for p, r in runs.items()}
    result = {
        "benchmark": "precision_throughput",
        "model": "complex dim 128",
        "dataset": "wn18rr",
        "batch_size": 512,
        "threads": threads,
        "torch": torch.__version__,
        "rows_per_s": median,
        "runs": runs,
        "ratio_bf16_vs_fp32": median["bf16"] / median["fp32"],
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
