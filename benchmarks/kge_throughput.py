"""KGE throughput: embedlab vs PyKEEN 1.11.1, ComplEx dim 128 (64 complex), batch 512, WN18RR.

Measures in one process run, one after the other on the same machine:

* the machine's fp32 matmul peak (median GFLOP/s of a 4096^3 product);
* embedlab training throughput: 1vsAll rows (one (subject, relation) query scored against all
  40,943 entities, forward + backward + Adagrad step) per second, over ``--train-batches``
  timed batches of 512 triples (= 1,024 rows) after 3 warm-up batches, median of ``--repeats``;
* embedlab filtered evaluation throughput: all 6,268 WN18RR test queries (both directions,
  filtered with train+valid+test), median of ``--repeats`` full passes;
* the same two numbers for PyKEEN (``benchmarks/peer_pykeen_kge.py`` run inside
  ``.bench-venvs/pykeen``; see ``benchmarks/setup_peer_envs.sh``), then the ratios.

Achieved GFLOP/s counts only the scoring products: training 3 x 2 N d per row (scores,
gradient of the queries, gradient of the entity table), evaluation 2 N d per query.

Usage: ``EMBEDLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/kge_throughput.py``
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from embedlab.datasets.kg import load_kg
from embedlab.evaluation.kge_eval import evaluate_kge, known_answers
from embedlab.kge.config import build_config
from embedlab.kge.one_vs_all import OneVsAllTask
from embedlab.kge.run import build_model
from embedlab.training.optim import build_optimizer

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "kge" / "wn18rr" / "complex-sce.yaml"
PEER_PYTHON = ROOT / ".bench-venvs" / "pykeen" / "bin" / "python"


def matmul_peak(size: int = 4096, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def embedlab_numbers(train_batches: int, repeats: int) -> dict:
    cfg = build_config(path=CONFIG)
    ds = load_kg("wn18rr")
    torch.manual_seed(0)
    model = build_model(cfg, ds)
    known = known_answers(ds.all_triples(), ds.num_relations)
    task = OneVsAllTask(model=model, dataset=ds, known=known, config=cfg)
    optimizer = build_optimizer(model.parameters(), name=cfg.train.optimizer, lr=cfg.train.lr)
    batches = task.batches(torch.Generator().manual_seed(0))

    def step() -> int:
        optimizer.zero_grad(set_to_none=True)
        loss, rows = task.loss(next(batches))
        loss.backward()
        optimizer.step()
        return rows

    for _ in range(3):
        step()
    rates = []
    for _ in range(repeats):
        start, rows = time.perf_counter(), 0
        for _ in range(train_batches):
            rows += step()
        rates.append(rows / (time.perf_counter() - start))
    eval_rates, queries = [], 0
    for _ in range(repeats):
        start = time.perf_counter()  # building the filter index is timed too, as in PyKEEN
        known = known_answers(ds.all_triples(), ds.num_relations)
        metrics = evaluate_kge(model, ds.splits["test"], known)
        eval_rates.append(metrics["num_queries"] / (time.perf_counter() - start))
        queries = metrics["num_queries"]
    n, d = ds.num_entities, cfg.model.dim
    train_rate, eval_rate = statistics.median(rates), statistics.median(eval_rates)
    return {
        "train": {"rows_per_s": train_rate, "runs": rates, "gflops": train_rate * 6 * n * d / 1e9},
        "eval": {
            "queries": queries,
            "queries_per_s": eval_rate,
            "seconds": queries / eval_rate,
            "runs": eval_rates,
            "gflops": eval_rate * 2 * n * d / 1e9,
        },
    }


def pykeen_numbers(train_batches: int) -> dict | None:
    if not PEER_PYTHON.is_file():
        print(
            f"no peer environment at {PEER_PYTHON}; run benchmarks/setup_peer_envs.sh",
            file=sys.stderr,
        )
        return None
    cmd = [
        str(PEER_PYTHON),
        str(ROOT / "benchmarks" / "peer_pykeen_kge.py"),
        "--train-batches",
        str(train_batches),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        raise SystemExit(f"peer benchmark failed ({out.returncode}):\n{out.stderr}")
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


EMBEDLAB_ROWS_PER_EPOCH = 173_670  # WN18RR: 86,835 training triples x 2 directions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-train-batches", type=int, default=20)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    args = parser.parse_args()
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    os.environ["BENCH_THREADS"] = str(threads)
    result: dict = {
        "benchmark": "kge_throughput",
        "model": "complex dim 128",
        "dataset": "wn18rr",
        "batch_size": 512,
        "threads": threads,
        "torch": torch.__version__,
    }
    result["matmul_peak_gflops"] = matmul_peak()
    result["embedlab"] = embedlab_numbers(args.train_batches, args.repeats)
    peer = None if args.no_peer else pykeen_numbers(args.peer_train_batches)
    if peer is not None:
        result["pykeen"] = peer
        result["ratio_train_vs_pykeen"] = (
            result["embedlab"]["train"]["rows_per_s"] / peer["train"]["rows_per_s"]
        )
        result["ratio_eval_vs_pykeen"] = (
            result["embedlab"]["eval"]["queries_per_s"] / peer["eval"]["queries_per_s"]
        )
        # an epoch is not the same number of rows: embedlab scores every training triple in
        # both directions (2 x 86,835 = 173,670 rows), PyKEEN's LCWA one row per unique
        # (head, relation) pair incl. inverses (its rows_per_epoch, 103,509 on WN18RR)
        ours = EMBEDLAB_ROWS_PER_EPOCH / result["embedlab"]["train"]["rows_per_s"]
        theirs = peer["train"]["rows_per_epoch"] / peer["train"]["rows_per_s"]
        result["epoch_seconds"] = {"embedlab": ours, "pykeen": theirs}
        result["ratio_epoch_time_vs_pykeen"] = theirs / ours  # > 1: embedlab's epoch is faster
    result["libkge_reference_rows_per_s"] = 930  # quoted from issue 2 (187 s per 173,670-row epoch)
    result["ratio_train_vs_libkge_reference"] = result["embedlab"]["train"]["rows_per_s"] / 930
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
