"""Paper 002's Table 2 / Table 3 at one fixed training budget, one process per cell, resumable.

Each cell is ``embedlab kge train --config configs/kge/<dataset>/<model>-<loss>.yaml`` with
``train.max_minutes=<budget>`` and ``train.num_threads=<threads>``, its run directory under
``--runs``; when it ends its metrics (test and valid, timing, stop reason, peak resident memory of
the process) are merged into ``--json`` at once (atomic rewrite), so an interrupted grid keeps
every finished cell. Re-running skips the cells already in the JSON; a cell interrupted half-way
resumes from its run directory's last checkpoint (the loop counts the seconds it had already
trained). While the file ``<runs>/PAUSE`` exists no new cell starts (the running one finishes),
so a timing benchmark can have the machine to itself without eating into any cell's budget.

Sections: ``wn18rr`` (all 24 cells: 6 models x NS, SANS, SCE, SCE w/ LS), ``fb15k-237`` (the ComplEx
and RotatE rows), ``table3`` (ComplEx + SCE w/ LS on WN18RR after pre-training with SCE, SCE w/ BC
or SCE w/ LS for the same budget; the "no pre-training" row is the table-2 cell).

Usage::

    EMBEDLAB_DATA_DIR=../shared/datasets python benchmarks/table2_grid.py \
        --runs runs/table2 --json docs/table2-wn18rr.json --minutes 10 --threads 2 \
        --sections wn18rr fb15k-237 table3
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cell_queue import ROOT, Job, drain, train_cell
from grid_args import grid_parser, parse_grid_args
from table2_report import LOSSES, MODELS, PAPER_WN18RR

METRICS = ("mrr", "hits@1", "hits@3", "hits@10")
# paper 002, table 2, FB15k-237 (MRR, Hits@1, Hits@3, Hits@10) for the two rows run here
PAPER_FB15K237 = {
    "complex": {"ns": (0.296, 0.211, 0.324, 0.468), "sans": (0.300, 0.214, 0.328, 0.472),
                "sce": (0.300, 0.218, 0.326, 0.466), "sce_ls": (0.318, 0.231, 0.348, 0.493)},
    "rotate": {"ns": (0.301, 0.203, 0.333, 0.505), "sans": (0.333, 0.238, 0.371, 0.523),
               "sce": (0.315, 0.228, 0.347, 0.486), "sce_ls": (0.315, 0.228, 0.346, 0.489)},
}  # fmt: skip
# paper 002, table 3, WN18RR, ComplEx + SCE w/ LS, by pre-training loss
PAPER_TABLE3 = {"none": (0.477, 0.441, 0.491, 0.546), "sce": (0.477, 0.439, 0.493, 0.550),
                "sce_bc": (0.469, 0.433, 0.486, 0.533), "sce_ls": (0.481, 0.444, 0.496, 0.553)}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Cell:
    key: str  # "<section>/<name>" in the JSON
    config: Path
    paper: tuple[float, ...] | None
    init_from: str | None = None  # key of the cell whose run directory initializes this one


def cells(sections: list[str]) -> list[Cell]:
    out: list[Cell] = []
    conf = ROOT / "configs" / "kge"
    for section in sections:
        if section == "wn18rr":
            out += [Cell(key=f"wn18rr/{m}-{loss}", config=conf / "wn18rr" / f"{m}-{loss}.yaml",
                         paper=PAPER_WN18RR[m][loss]) for m in MODELS for loss in LOSSES]  # fmt: skip
        elif section == "fb15k-237":
            out += [Cell(key=f"fb15k-237/{m}-{loss}", config=conf / "fb15k-237" / f"{m}-{loss}.yaml",
                         paper=PAPER_FB15K237[m][loss]) for m in PAPER_FB15K237 for loss in LOSSES]  # fmt: skip
        elif section == "table3":
            for pre in ("sce", "sce_bc", "sce_ls"):
                out.append(Cell(key=f"table3/pretrain-complex-{pre}", paper=None,
                                config=conf / "wn18rr" / f"complex-{pre}.yaml"))  # fmt: skip
                out.append(Cell(key=f"table3/complex-sce_ls-from-{pre}", paper=PAPER_TABLE3[pre],
                                config=conf / "wn18rr" / "complex-sce_ls.yaml",
                                init_from=f"table3/pretrain-complex-{pre}"))  # fmt: skip
        else:
            raise SystemExit(f"unknown section {section!r} (wn18rr, fb15k-237, table3)")
    return out


def kge_fields(metrics: dict) -> dict:
    """What a Table-2 row keeps of a run's metrics.json."""
    timing = ("epochs", "train_seconds", "train_and_valid_seconds", "rows", "rows_per_s")
    return {"test": {k: metrics["test"][k] for k in METRICS},
            "valid": {k: metrics["valid"][k] for k in METRICS},
            "best_epoch": metrics.get("best_epoch"),
            "timing": {k: metrics["timing"].get(k) for k in timing},
            "stop_reason": metrics.get("stop_reason", metrics["timing"].get("stop_reason"))}  # fmt: skip


def run_cell(cell: Cell, args: argparse.Namespace) -> dict:
    fields: dict = {"config": str(cell.config.relative_to(ROOT))}
    if cell.paper is not None:
        fields["paper"] = dict(zip(METRICS, cell.paper, strict=True))
    options = [] if cell.init_from is None else ["--init-from", str(args.runs / cell.init_from)]
    return train_cell(embedlab=args.embedlab, runs=args.runs, key=cell.key, task="kge",
                      config=cell.config, options=options, fields=fields, extract=kge_fields,
                      sets=[f"train.max_minutes={args.minutes}", f"train.num_threads={args.threads}"],
                      quality=lambda row: f"test MRR {row.get('test', {}).get('mrr')}")  # fmt: skip


def main() -> None:
    parser = grid_parser(__doc__.splitlines()[0], runs="runs/table2",
                         json_path="docs/table2-wn18rr.json", overrides=False)  # fmt: skip
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per cell")
    parser.add_argument("--sections", nargs="+", default=["wn18rr", "fb15k-237", "table3"])
    args = parse_grid_args(parser, None)
    budget = {"train_minutes": args.minutes, "threads": args.threads,
              "includes": "training + periodic validation (train.max_minutes); final valid/test evaluation on top",
              "machine": f"{os.cpu_count()} cores"}  # fmt: skip
    jobs = [Job(key=cell.key, run=partial(run_cell, cell, args),
                needs=None if cell.init_from is None else args.runs / cell.init_from / "metrics.json")
            for cell in cells(args.sections)]  # fmt: skip
    drain(jobs, json_path=args.json, runs=args.runs, budget=budget, only=args.only,
          same_budget=("train_minutes", "threads"), list_only=args.list)  # fmt: skip


if __name__ == "__main__":
    main()
