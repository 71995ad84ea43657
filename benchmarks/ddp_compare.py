"""One process x 2 threads against torchrun 2 processes x 1 thread, same command, same seed.

Runs ``embedlab kge train`` (or ``mf train`` / ``lm train``) ``--repeats`` times each way,
alternating (the machine is shared and noisy), each into a fresh run directory, and reads what
the runs themselves recorded: the trace's per-epoch ``rows_per_s`` and ``epoch_seconds``, and
``metrics.json`` (test metrics, epochs, wall seconds). Reports medians per mode and the ratio
``two_processes / one_process`` of the training throughput. Each finished run is appended to the
JSON file at once (a long comparison survives an interrupted session).

Usage (the issue's acceptance command, kinship DistMult at its defaults)::

    EMBEDLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/ddp_compare.py \\
        --name kinship-distmult --out docs/bench/ddp_kinship.json -- \\
        kge train --dataset kinship --model distmult --set seed=7

The last stdout line is one JSON object (the summary).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _argv(mode: str, command: list[str], out: Path) -> list[str]:
    threads = "2" if mode == "one_process" else "1"
    tail = [*command, "--set", f"train.num_threads={threads}", "--no-progress", "--out", str(out)]
    if mode == "one_process":
        return [sys.executable, "-m", "embedlab", *tail]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node=2", "-m", "embedlab", *tail]  # fmt: skip


def _one_run(mode: str, command: list[str], out: Path) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": "2" if mode == "one_process" else "1"}
    start = time.perf_counter()
    done = subprocess.run(_argv(mode, command, out), capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    epochs = [
        json.loads(line)
        for line in (out / "trace.jsonl").read_text().splitlines()
        if '"event": "epoch"' in line
    ]
    start_event = json.loads((out / "trace.jsonl").read_text().splitlines()[0])
    test = metrics["test"]
    return {
        "mode": mode,
        "world_size": start_event["world_size"],
        "threads_per_process": start_event["threads"],
        "epochs": metrics["timing"]["epochs"],
        "best_epoch": metrics["best_epoch"],
        "test": {k: v for k, v in test.items() if isinstance(v, (int, float))},
        "rows_per_s_median": statistics.median(e["rows_per_s"] for e in epochs),
        "epoch_seconds_median": statistics.median(e["epoch_seconds"] for e in epochs),
        "wall_seconds": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON written after every run")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "ddp_compare")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the CLI command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    result: dict[str, Any] = {"name": args.name, "command": command, "runs": []}
    for repeat in range(args.repeats):
        for mode in ("one_process", "two_processes"):
            run = _one_run(mode, command, args.work / f"{args.name}-{mode}-{repeat}")
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    summary: dict[str, Any] = {}
    for mode in ("one_process", "two_processes"):
        runs = [r for r in result["runs"] if r["mode"] == mode]
        summary[mode] = {
            "rows_per_s_median": statistics.median(r["rows_per_s_median"] for r in runs),
            "test_mrr": [r["test"].get("mrr") for r in runs],
            "epochs": [r["epochs"] for r in runs],
        }
    summary["throughput_ratio_two_over_one"] = (
        summary["two_processes"]["rows_per_s_median"] / summary["one_process"]["rows_per_s_median"]
    )
    result["summary"] = summary
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps({"name": args.name, **summary}))


if __name__ == "__main__":
    main()
