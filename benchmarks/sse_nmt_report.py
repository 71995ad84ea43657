"""Baseline vs SSE-SE on Multi30K from benchmarks/sse_nmt_grid.py's JSON: BLEU mean +- sd over
seeds, the paired (same seed) SSE-SE minus baseline difference, the p sweep, and the curves.

Usage: .venv/bin/python benchmarks/sse_nmt_report.py runs/nmt/sse-nmt-multi30k.json --runs runs/nmt \
           --png runs/nmt/curves --write

Prints the markdown tables (per model, same-seed differences, and per run where ``--runs`` holds
the traces); ``--write`` stores the summary under ``"summary"`` in the JSON (the
grid keeps that key; refused while a grid runs on ``--runs``); ``--png PREFIX`` draws
``PREFIX-loss.png`` (valid NLL per target token), ``PREFIX-loss-end.png`` (the same, y axis from
0.05 below the best final valid NLL to 0.45 above it) and ``PREFIX-bleu.png`` (greedy BLEU on the
first valid sentences) against training minutes for the paired runs (blue baseline, red SSE-SE,
one line style per seed), and ``PREFIX-sweep.png`` (valid NLL against epochs, zoomed like
``loss-end`` but from the lowest final valid or test NLL, of the p sweep's seed: baseline and
every p) where a seed has more than one p, read from ``<runs>/<run>/trace.jsonl`` (a grid's run directories, or the committed ``docs/sse-nmt-traces``).
Last stdout line: JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
from pathlib import Path
from typing import Any

from cell_queue import grid_lock

from embedlab.plots import plot_trace
from embedlab.training.trace import events_of_final_history, read_trace


def _stats(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "mean": statistics.fmean(values) if values else None,
            "sd": statistics.stdev(values) if len(values) > 1 else None}  # fmt: skip


def summarize(grid: dict[str, Any]) -> dict[str, Any]:
    """``groups``: test BLEU and test NLL (nats per target token) statistics per variant and p
    over the finished seeds (sample sd, ``None`` below 2 seeds); ``paired_sse_minus_baseline``:
    SSE-SE (p = 0.01) minus baseline test BLEU over the seeds where both finished;
    ``paired_by_p``: for every p, the same-seed differences of test BLEU and test NLL (``diffs``
    lists them by seed)."""
    done = {
        k: c for k, c in grid.get("cells", {}).items() if c.get("test", {}).get("bleu") is not None
    }
    groups: dict[str, dict[str, Any]] = {}
    order = sorted(done.values(), key=lambda c: (c["p"] is not None, c["p"] or 0.0, c["seed"]))
    for cell in order:  # baseline first, then by p
        name = "baseline" if cell["p"] is None else f"sse-se p={cell['p']}"
        group = groups.setdefault(name, {"seeds": [], "bleu": [], "loss": []})
        group["seeds"].append(cell["seed"])
        group["bleu"].append(cell["test"]["bleu"])
        if cell["test"].get("loss") is not None:
            group["loss"].append(cell["test"]["loss"])
    by_seed = {(c["p"], c["seed"]): c["test"] for c in done.values()}
    paired_by_p: dict[str, Any] = {}
    for p in sorted({p for p, _ in by_seed if p is not None}):
        seeds = sorted(s for q, s in by_seed if q == p and (None, s) in by_seed)
        entry: dict[str, Any] = {"seeds": seeds}
        for metric in ("bleu", "loss"):
            pairs_of = [
                (by_seed[(p, s)].get(metric), by_seed[(None, s)].get(metric)) for s in seeds
            ]
            if all(sse is not None and base is not None for sse, base in pairs_of):
                values = [sse - base for sse, base in pairs_of]
                entry[f"test_{metric}"] = _stats(values) | {"diffs": values}
        paired_by_p[str(p)] = entry
    pairs = paired_by_p.get("0.01", {}).get("test_bleu")
    return {
        "groups": {name: {"seeds": g["seeds"], "test_bleu": _stats(g["bleu"]),
                          "test_loss": _stats(g["loss"])} for name, g in groups.items()},
        "paired_sse_minus_baseline": _stats([]) if pairs is None
        else {k: pairs[k] for k in ("n", "mean", "sd")},
        "paired_by_p": paired_by_p,
    }  # fmt: skip


def sweep_runs(grid: dict[str, Any]) -> list[str]:
    """The finished runs of the p sweep's seed (the lowest seed with more than one SSE-SE p),
    baseline first, then by p; ``[]`` when no seed has more than one p."""
    cells = {k: c for k, c in grid.get("cells", {}).items() if c.get("returncode") == 0}
    seeds = sorted({c["seed"] for c in cells.values()})
    for seed in seeds:
        ps = {c["p"] for c in cells.values() if c["seed"] == seed and c["p"] is not None}
        if len(ps) > 1:
            keys = [k for k, c in cells.items() if c["seed"] == seed]
            return sorted(keys, key=lambda k: (cells[k]["p"] is not None, cells[k]["p"] or 0.0))
    return []


def per_run(grid: dict[str, Any], runs: Path) -> dict[str, dict[str, Any]]:
    """For each finished run with ``<runs>/<run>/trace.jsonl``: the averaged model's valid/test
    BLEU and NLL (from the grid's row) and, from the trace's final history, the best per-epoch
    valid NLL and its epoch, the last epoch's valid NLL and its training NLL (plain NLL of the
    training batches in training mode: dropout, and SSE where on)."""
    rows: dict[str, dict[str, Any]] = {}
    cells = grid.get("cells", {})
    order = sorted(
        cells, key=lambda k: (cells[k]["seed"], cells[k]["p"] is not None, cells[k]["p"] or 0.0)
    )
    for key in order:
        cell, path = cells[key], runs / key / "trace.jsonl"
        if cell.get("test", {}).get("bleu") is None or not path.is_file():
            continue
        events = read_trace(path)
        valid = events_of_final_history(events, "valid")
        epochs = events_of_final_history(events, "epoch")
        best = min(valid, key=lambda e: e["loss"])
        rows[key] = {
            "seed": cell["seed"], "p": cell["p"],
            "test_bleu": cell["test"]["bleu"], "valid_bleu": cell["valid"]["bleu"],
            "test_loss": cell["test"]["loss"], "valid_loss": cell["valid"]["loss"],
            "best_epoch": best["epoch"], "best_epoch_valid_loss": best["loss"],
            "last_epoch": valid[-1]["epoch"], "last_valid_loss": valid[-1]["loss"],
            "last_train_loss": epochs[-1]["loss"],
        }  # fmt: skip
    return rows


def per_run_markdown(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| seed | model | test BLEU | valid BLEU | test NLL | valid NLL | best valid NLL of an "
        "epoch (epoch) | valid NLL, last epoch | train NLL, last epoch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows.values():
        model = "baseline" if r["p"] is None else f"SSE-SE p={r['p']}"
        lines.append(
            f"| {r['seed']} | {model} | {r['test_bleu']:.2f} | {r['valid_bleu']:.2f} "
            f"| {r['test_loss']:.3f} | {r['valid_loss']:.3f} "
            f"| {r['best_epoch_valid_loss']:.3f} ({r['best_epoch']}) "
            f"| {r['last_valid_loss']:.3f} | {r['last_train_loss']:.3f} |"
        )
    return "\n".join(lines)


def markdown(summary: dict[str, Any]) -> str:
    def fmt(s: dict[str, Any] | None, digits: int = 2) -> str:
        if s is None or s["mean"] is None:
            return "-"
        sd = "" if s["sd"] is None else f" ± {s['sd']:.{digits}f}"
        return f"{s['mean']:.{digits}f}{sd}"

    lines = [
        "| model | seeds | test BLEU (mean ± sd) | test NLL (nats/token) |",
        "| --- | --- | --- | --- |",
    ]
    for name, g in summary["groups"].items():
        seeds = ", ".join(map(str, g["seeds"]))
        lines.append(f"| {name} | {seeds} | {fmt(g['test_bleu'])} | {fmt(g['test_loss'], 3)} |")
    lines += [
        "",
        "| SSE-SE minus baseline, same seed | seeds | test BLEU | test NLL |",
        "| --- | --- | --- | --- |",
    ]
    for p, entry in summary["paired_by_p"].items():
        seeds = ", ".join(map(str, entry["seeds"]))
        bleu, loss = entry.get("test_bleu"), entry.get("test_loss")
        lines.append(f"| p={p} | {seeds} | {fmt(bleu)} | {fmt(loss, 3)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("--runs", type=Path, default=Path("runs/nmt"))
    parser.add_argument("--png", default=None, help="prefix of the three curve PNGs")
    parser.add_argument("--write", action="store_true", help="store the summary in the JSON")
    args = parser.parse_args(argv)
    grid = json.loads(args.grid.read_text(encoding="utf-8"))
    summary = summarize(grid)
    print(markdown(summary))
    rows = per_run(grid, args.runs)
    if rows:
        summary["per_run"] = rows
        print("\n" + per_run_markdown(rows))
    if args.png:
        paired = sorted(k for k, c in grid.get("cells", {}).items()
                        if c.get("returncode") == 0 and c["p"] in (None, 0.01))  # fmt: skip
        dirs = [args.runs / k for k in paired]
        best = min(grid["cells"][k]["valid"]["loss"] for k in paired) if paired else 0.0
        dashes = ("-", "--", ":", "-.")
        styles = {  # one colour per variant, one line style per seed
            k: {"color": "tab:blue" if grid["cells"][k]["p"] is None else "tab:red",
                "linestyle": dashes[grid["cells"][k]["seed"] % len(dashes)]}
            for k in paired
        }  # fmt: skip
        summary["curves"] = [
            str(plot_trace(dirs, Path(f"{args.png}-{name}.png"), metric=metric, title=title,
                           ylim=ylim, styles=styles))
            for name, metric, title, ylim in (
                ("loss", "loss", "Multi30K valid NLL per target token", None),
                ("loss-end", "loss", "Multi30K valid NLL per target token (zoomed)",
                 (best - 0.05, best + 0.45)),
                ("bleu", "bleu_greedy", "Multi30K greedy BLEU, first valid sentences", None),
            )
        ]  # fmt: skip
        sweep = sweep_runs(grid)
        if sweep:  # against epochs: the sweep's runs may have shared the machine differently
            low = min(grid["cells"][k][s]["loss"] for k in sweep for s in ("valid", "test"))
            summary["curves"].append(
                str(plot_trace([args.runs / k for k in sweep], Path(f"{args.png}-sweep.png"),
                               metric="loss", title="Multi30K valid NLL per target token, p sweep",
                               ylim=(low - 0.05, low + 0.45), x_axis="epoch"))
            )  # fmt: skip
    if args.write:
        # refused while a grid runs on --runs (it rewrites the same file); a directory that no
        # grid ever used (committed traces) is not locked
        lock = grid_lock(args.runs) if (args.runs / "LOCK").exists() else contextlib.nullcontext()
        with lock:
            grid = json.loads(args.grid.read_text(encoding="utf-8"))
            grid["summary"] = summary
            tmp = args.grid.with_suffix(".tmp")
            tmp.write_text(json.dumps(grid, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, args.grid)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
