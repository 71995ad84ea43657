"""NMT training step time by precision (fp32 / bf16 autocast) and memory allocator (glibc /
tcmalloc through ``LD_PRELOAD``), side by side in one run.

Each variant is one ``benchmarks/nmt_throughput.py`` process training the same first
``--batches`` token-budget batches of one epoch from the same seed (``train.max_batches``), so
every variant times the same work; the variants take turns for ``--repeats`` rounds, in reverse
order every other round (so no variant always runs first). An allocator
changes speed only; bf16 also changes the numerics (the valid NLL after those batches is
reported beside the time). ``--torch-dropout`` adds a bf16 variant (with the last allocator) in
which the model's ``Dropout16`` layers are torch's ``nn.Dropout`` again (its masks differ, so
its valid NLL does too). Machines here are shared: quote the medians' ratios.

Usage::

    EMBEDLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/nmt_speed_ab.py \\
        --tcmalloc /lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 --threads 1 --batches 15 \\
        --repeats 3 --json docs/bench/nmt_speed_ab.json

The last stdout line is the JSON object written to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cell_queue import ROOT
from grid_args import refuse_overrides

CONFIG = ROOT / "configs" / "nmt" / "multi30k" / "transformer-small.yaml"


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, else as given."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def one_run(
    *, precision: str, preload: str | None, args: argparse.Namespace, out: Path,
    torch_dropout: bool = False,
) -> dict[str, Any]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if preload:
        env["LD_PRELOAD"] = preload
    flag = ["--torch-dropout"] if torch_dropout else []
    command = [sys.executable, str(ROOT / "benchmarks" / "nmt_throughput.py"), *flag, str(args.config),
               str(out), "train.max_epochs=1", f"train.max_batches={args.batches}",
               f"train.num_threads={args.threads}", f"train.precision={precision}",
               "eval.valid_bleu_sentences=0", *args.set]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    text = done.stdout
    report = json.loads(text[text.rfind("\n{") + 1 :])  # the report: the last "{" line onwards
    if report["steps"] != args.batches:
        raise SystemExit(f"expected {args.batches} steps, the run did {report['steps']}")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--tcmalloc", default=None,
                        help="path of libtcmalloc(_minimal).so to preload (omit: glibc only)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=20, help="timed training steps per run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--torch-dropout", action="store_true",
                        help="add a bf16 variant (last allocator) with torch's nn.Dropout in "
                             "place of Dropout16")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override of every run (e.g. dataset=DIR)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.tcmalloc and not Path(args.tcmalloc).is_file():
        parser.error(f"--tcmalloc {args.tcmalloc}: no such file")
    allocators = {"glibc": None} | ({"tcmalloc": args.tcmalloc} if args.tcmalloc else {})
    variants = [(p, a, False) for a in allocators for p in ("fp32", "bf16")]
    if args.torch_dropout:
        variants.append(("bf16", list(allocators)[-1], True))
    taken = {"train.max_epochs", "train.max_batches", "train.num_threads", "train.precision"}
    try:
        refuse_overrides(args.set, taken)
    except SystemExit as err:  # a usage error: argparse's message and exit code 2
        parser.error(str(err))

    def name(precision: str, allocator: str, plain: bool) -> str:
        return f"{precision}+{allocator}" + ("+torch_dropout" if plain else "")

    runs: dict[str, list[dict[str, Any]]] = {name(*v): [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):
            for precision, allocator, plain in variants if round_ % 2 == 0 else variants[::-1]:
                key = name(precision, allocator, plain)
                report = one_run(precision=precision, preload=allocators[allocator], args=args,
                                 out=Path(tmp) / "run", torch_dropout=plain)  # fmt: skip
                runs[key].append({"s_per_step": report["s_per_step"],
                                  "valid_loss": report["valid_loss"],
                                  "dropout": report["dropout"],
                                  "dropouts_replaced": report["dropouts_replaced"]})  # fmt: skip
                print(f"round {round_ + 1} {key}: {report['s_per_step']:.3f} s/step", flush=True)
    median = {k: statistics.median(r["s_per_step"] for r in v) for k, v in runs.items()}
    base = median["fp32+glibc"]
    result = {
        "config": shown_path(args.config),
        "threads": args.threads, "batches": args.batches, "repeats": args.repeats,
        "tcmalloc": args.tcmalloc, "cores": os.cpu_count(), "overrides": args.set,
        "median_s_per_step": median,
        "speedup_vs_fp32_glibc": {k: base / v for k, v in median.items()},
        "runs": runs,
    }  # fmt: skip
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
