"""Baseline vs SSE-SE on Multi30K from benchmarks/sse_nmt_grid.py's JSON: BLEU mean +- sd over
seeds, the paired (same seed) SSE-SE minus baseline difference, the p sweep, and the curves.

Usage: .venv/bin/python benchmarks/sse_nmt_report.py runs/nmt/sse-nmt-multi30k.json --runs runs/nmt \
           --png runs/nmt/curves --write

Prints a markdown table; ``--write`` stores the summary under ``"summary"`` in the JSON (the grid
keeps that key; refused while a grid runs on ``--runs``); ``--png PREFIX`` draws ``PREFIX-loss.png`` (valid NLL per target token) and
``PREFIX-bleu.png`` (greedy BLEU on the first valid sentences) against training minutes for the
paired runs, read from their ``trace.jsonl`` under ``--runs``. Last stdout line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

from cell_queue import grid_lock

from embedlab.plots import plot_trace


def _stats(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "mean": statistics.fmean(values) if values else None,
            "sd": statistics.stdev(values) if len(values) > 1 else None}  # fmt: skip


def summarize(grid: dict[str, Any]) -> dict[str, Any]:
    """``groups``: test BLEU statistics per variant and p over the finished seeds (sample sd,
    ``None`` below 2 seeds); ``paired``: SSE-SE (p = 0.01) minus baseline test BLEU over the seeds
    where both finished."""
    done = {
        k: c for k, c in grid.get("cells", {}).items() if c.get("test", {}).get("bleu") is not None
    }
    groups: dict[str, dict[str, Any]] = {}
    for cell in done.values():
        name = "baseline" if cell["p"] is None else f"sse-se p={cell['p']}"
        groups.setdefault(name, {"seeds": [], "bleu": []})
        groups[name]["seeds"].append(cell["seed"])
        groups[name]["bleu"].append(cell["test"]["bleu"])
    by_seed = {(c["p"], c["seed"]): c["test"]["bleu"] for c in done.values()}
    paired = sorted(s for p, s in by_seed if p is None and (0.01, s) in by_seed)
    diffs = [by_seed[(0.01, s)] - by_seed[(None, s)] for s in paired]
    return {
        "groups": {name: {"seeds": g["seeds"], "test_bleu": _stats(g["bleu"])} for name, g in groups.items()},
        "paired_sse_minus_baseline": _stats(diffs),
    }  # fmt: skip


def markdown(summary: dict[str, Any]) -> str:
    def fmt(s: dict[str, Any]) -> str:
        if s["mean"] is None:
            return "-"
        return f"{s['mean']:.2f}" + ("" if s["sd"] is None else f" ± {s['sd']:.2f}")

    lines = ["| model | seeds | test BLEU (mean ± sd) |", "| --- | --- | --- |"]
    for name, g in summary["groups"].items():
        lines.append(f"| {name} | {', '.join(map(str, g['seeds']))} | {fmt(g['test_bleu'])} |")
    paired = summary["paired_sse_minus_baseline"]
    lines.append(
        f"| SSE-SE p=0.01 minus baseline, same seed | {paired['n']} pairs | {fmt(paired)} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("--runs", type=Path, default=Path("runs/nmt"))
    parser.add_argument("--png", default=None, help="prefix of the two curve PNGs")
    parser.add_argument("--write", action="store_true", help="store the summary in the JSON")
    args = parser.parse_args(argv)
    grid = json.loads(args.grid.read_text(encoding="utf-8"))
    summary = summarize(grid)
    print(markdown(summary))
    if args.png:
        paired = sorted(k for k, c in grid.get("cells", {}).items()
                        if c.get("returncode") == 0 and c["p"] in (None, 0.01))  # fmt: skip
        dirs = [args.runs / k for k in paired]
        summary["curves"] = [
            str(plot_trace(dirs, Path(f"{args.png}-{name}.png"), metric=metric, title=title))
            for name, metric, title in (
                ("loss", "loss", "Multi30K valid NLL per target token"),
                ("bleu", "bleu_greedy", "Multi30K greedy BLEU, first valid sentences"),
            )
        ]
    if args.write:
        with grid_lock(args.runs):  # refused while the grid runs: it rewrites the same file
            grid = json.loads(args.grid.read_text(encoding="utf-8"))
            grid["summary"] = summary
            tmp = args.grid.with_suffix(".tmp")
            tmp.write_text(json.dumps(grid, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, args.grid)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
