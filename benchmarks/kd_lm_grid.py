"""KD codes on PTB at full length (paper 003, supplement table 1 and figure 1), one run per row,
resumable; each finished row lands in ``--json`` at once.

Rows (every KD row compresses the input table; the softmax table stays full):

- ``full``: Zaremba's small LSTM LM with the full table, 13 epochs (the teacher of the PDG rows).
- Table 1 ablation at K = 32, D = 32, d' = 64, linear composition, each row changing one thing
  from its parent (``parent`` / ``changes`` in the JSON): 1 CR, 2 + STE, 3 + temperature
  schedule (parent 2), 4 + entropy regularization (parent 2, as the paper's row labels),
  5 + PDG from ``full`` without auto-encoding, 6 + auto-encoding.
- Compression sweep with row 6's recipe: (K, D) = (64, 16), (16, 16), (16, 8).
- Figure 1 with row 6's recipe: d' in 16, 32, 64, 128 for linear and LSTM composition (linear
  d' = 64 is row 6 itself).

Each row is ``embedlab lm train --config <yaml> --out <runs>/<key> --set ...`` in its own process
(the config's own length: 13 epochs, lr 1 halved every epoch after 4); a killed row resumes from its
run directory's last checkpoint when the grid is started again, finished rows are skipped, and
``<runs>/PAUSE`` holds the next row (benchmarks/cell_queue.py). ``--set`` adds overrides to every
row (recorded in the JSON's budget; a JSON written under other overrides is refused, so rows of
different budgets never mix). Table and figure: benchmarks/kd_lm_table.py.

Usage::

    EMBEDLAB_DATA_DIR=../shared/datasets nohup python benchmarks/kd_lm_grid.py \
        --runs runs/kd-lm --json runs/kd-lm/kd-lm-ptb.json --threads 1 --parallel 2 >> runs/kd-lm/grid.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from cell_queue import Job, drain, train_cell
from grid_args import grid_parser, parse_grid_args, refuse_overrides

LM = Path("configs/lm/ptb")
ABLATION = LM / "kd-ablation"
RECIPE = ABLATION / "6-pdg-autoencode.yaml"
KD = "token_embedding.kd"


@dataclass(frozen=True, kw_only=True)
class Row:
    key: str
    config: Path  # relative to the repository root
    variant: str
    parent: str | None = None
    changes: str = ""
    overrides: tuple[str, ...] = ()
    needs_teacher: bool = False  # train.init_from=<runs>/full
    paper_perplexity: float | None = None  # supplement table 1 (a larger model, full training)
    figure1: tuple[str, int] | None = None  # (composition, d')


def rows() -> list[Row]:
    out = [
        Row(key="full", config=LM / "small.yaml", variant="full embedding table (teacher)"),
        Row(key="1-cr", config=ABLATION / "1-cr.yaml", variant="CR", parent="full",
            changes="input table -> KD codes K=32, D=32, d'=64, linear composition, softmax "
                    "relaxation at temperature 1 (CR)", paper_perplexity=90.61),
        Row(key="2-cr-ste", config=ABLATION / "2-cr-ste.yaml", variant="CR + STE", parent="1-cr",
            changes="straight_through: true (hard one-hot forward, relaxed gradient)",
            paper_perplexity=90.15),
        Row(key="3-cr-ste-temperature", config=ABLATION / "3-cr-ste-temperature.yaml",
            variant="CR + STE + temperature scheduling", parent="2-cr-ste",
            changes="temperature 1 -> 0.1, exponential over the first 4 epochs (the constant-lr "
                    "phase)", paper_perplexity=89.55),
        Row(key="4-cr-ste-entropy", config=ABLATION / "4-cr-ste-entropy.yaml",
            variant="CR + STE + entropy reg", parent="2-cr-ste",
            changes="entropy_weight: 1 (mean code-distribution entropy penalty)",
            paper_perplexity=89.03),
        Row(key="5-pdg", config=ABLATION / "5-pdg.yaml",
            variant="CR + STE + entropy reg + PDG (w/o autoencod.)", parent="4-cr-ste-entropy",
            changes="guidance: pdg from the full run (distill_weight 1, 30 distillation epochs)",
            needs_teacher=True, paper_perplexity=83.71),
        Row(key="6-pdg-autoencode", config=RECIPE,
            variant="CR + STE + entropy reg + PDG (w/ autoencod.)", parent="5-pdg",
            changes="autoencode: true (codes from an encoder of the teacher's rows)",
            needs_teacher=True, paper_perplexity=83.11, figure1=("linear", 64)),
    ]  # fmt: skip
    for K, D in ((64, 16), (16, 16), (16, 8)):
        out.append(Row(key=f"sweep-k{K}-d{D}", config=RECIPE, variant=f"K={K}, D={D} (recipe of row 6)",
                       parent="6-pdg-autoencode", changes=f"K={K}, D={D}",
                       overrides=(f"{KD}.K={K}", f"{KD}.D={D}"), needs_teacher=True))  # fmt: skip
    for composition in ("linear", "lstm"):
        for code_dim in (16, 32, 64, 128):
            if (composition, code_dim) == ("linear", 64):
                continue  # row 6
            out.append(Row(key=f"figure1-{composition}-d{code_dim}", config=RECIPE,
                           variant=f"{composition} composition, d'={code_dim} (recipe of row 6)",
                           parent="6-pdg-autoencode", changes=f"composition: {composition}, code_dim: {code_dim}",
                           overrides=(f"{KD}.composition={composition}", f"{KD}.code_dim={code_dim}"),
                           needs_teacher=True, figure1=(composition, code_dim)))  # fmt: skip
    return out


def row_result(row: Row, metrics: dict[str, Any]) -> dict[str, Any]:
    """The JSON fields read from a finished run's metrics.json."""
    comp = metrics.get("compression") or {}
    ratio = comp.get("ratio", 1.0)
    timing = metrics["timing"]
    return {
        "test_perplexity": metrics["test"]["perplexity"],
        "valid_perplexity": metrics["valid"]["perplexity"],
        "best_epoch": metrics.get("best_epoch"),
        "epochs": timing.get("epochs"),
        "train_seconds": timing.get("train_seconds"),
        "tokens_per_s": timing.get("rows_per_s"),
        "embedding_ratio": ratio,
        "embedding_bits_saved": 1.0 - 1.0 / ratio,
        "model_ratio": comp.get("model_ratio", 1.0),
    }


def run_row(row: Row, args: argparse.Namespace) -> dict[str, Any]:
    sets = [*row.overrides, f"train.num_threads={args.threads}", *args.set]
    if row.needs_teacher:
        sets.append(f"train.init_from={args.runs / 'full'}")
    fields = {"variant": row.variant, "parent": row.parent, "changes": row.changes,
              "config": str(row.config), "overrides": list(row.overrides),
              "paper_perplexity": row.paper_perplexity,
              "figure1": list(row.figure1) if row.figure1 else None,
              "threads": args.threads, "parallel": args.parallel}  # fmt: skip
    teacher = args.runs / "full" / "metrics.json"  # read before the row trains from it
    teacher_perplexity = (
        json.loads(teacher.read_text())["test"]["perplexity"]
        if row.needs_teacher and teacher.is_file()
        else None
    )
    result = train_cell(embedlab=args.embedlab, runs=args.runs, key=row.key, task="lm",
                        config=row.config, sets=sets, options=["--no-progress"], fields=fields,
                        extract=partial(row_result, row),
                        quality=lambda r: f"test perplexity {r.get('test_perplexity')}")  # fmt: skip
    if teacher_perplexity is not None:
        # the teacher this row distils from (a teacher trained again gives other digits)
        result["teacher_test_perplexity"] = teacher_perplexity
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = grid_parser(__doc__.splitlines()[0], runs="runs/kd-lm",
                         json_path="runs/kd-lm/kd-lm-ptb.json", parallel=True)  # fmt: skip
    return parse_grid_args(parser, argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # threads and parallel rows change the wall time only: recorded per row, not in the budget
    budget = {"epochs": "each config's own (13, Zaremba small: lr 1 halved every epoch after 4)",
              "extra_overrides": list(args.set), "machine": f"{os.cpu_count()} cores"}  # fmt: skip
    selected = [r for r in rows() if args.only is None or r.key in args.only]
    taken = {"train.num_threads", "train.init_from"}
    refuse_overrides(args.set, taken | {o.split("=", 1)[0] for r in selected for o in r.overrides})
    teacher = args.runs / "full" / "metrics.json"
    jobs = [Job(key=row.key, run=partial(run_row, row, args), needs=teacher if row.needs_teacher else None)
            for row in rows()]  # fmt: skip
    drain(jobs, json_path=args.json, runs=args.runs, budget=budget, only=args.only,
          same_budget=("extra_overrides",), list_only=args.list, parallel=args.parallel)  # fmt: skip


if __name__ == "__main__":
    main()
