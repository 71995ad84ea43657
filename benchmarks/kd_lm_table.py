"""Tables and supplement figure 1 from the PTB KD-code grid (benchmarks/kd_lm_grid.py) for docs/kd.md.

Usage: .venv/bin/python benchmarks/kd_lm_table.py runs/kd-lm/kd-lm-ptb.json --png runs/kd-lm/figure1.png

Prints the markdown table of the finished rows (test / valid perplexity, perplexity increase over
the full table, embedding compression, what the row changes, the paper's table-1 perplexity: a
larger model, so only the order compares) and, when any figure-1 row has finished, draws test
perplexity against the code-embedding dimension d' for linear and LSTM composition with the full
table as a dashed line (and, where figure-1 rows distilled from a teacher trained again, that
teacher's perplexity as a dash-dot line). Last stdout line: JSON (rows in the order they landed, with ``perplexity_increase``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from embedlab.plots import plot_compression_curve


def summarize(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """Finished rows (return code 0, perplexity present) with ``perplexity_increase`` over the
    ``full`` row when that row has finished (``None`` otherwise)."""
    cells = grid.get("cells", {})
    done = {k: v for k, v in cells.items() if v.get("test_perplexity") is not None}
    full = done.get("full", {}).get("test_perplexity")
    out = []
    for key, row in done.items():
        increase = None if full is None else row["test_perplexity"] / full - 1.0
        out.append({"run": key, **row, "perplexity_increase": increase})
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| row | test PPL | valid PPL | vs full | embedding compression | fewer bits | changes (from parent) | paper PPL |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        inc = "-" if r["perplexity_increase"] is None else f"{100 * r['perplexity_increase']:+.1f}%"
        parent = f" (from {r['parent']})" if r.get("parent") else ""
        lines.append(f"| {r['variant']} | {r['test_perplexity']:.2f} | {r['valid_perplexity']:.2f} | {inc} "
                     f"| {r['embedding_ratio']:.1f}x | {100 * r['embedding_bits_saved']:.1f}% "
                     f"| {r.get('changes') or '-'}{parent} | {r.get('paper_perplexity') or '-'} |")  # fmt: skip
    return "\n".join(lines)


def figure1(rows: list[dict[str, Any]], png: Path) -> Path | None:
    """Supplement figure 1: test perplexity against d' per composition; ``None`` when no
    figure-1 row or no full row has finished."""
    full = next((r for r in rows if r["run"] == "full"), None)
    series: dict[str, list[tuple[float, float, str]]] = {}
    for r in rows:
        if r.get("figure1"):
            composition, code_dim = r["figure1"]
            series.setdefault(composition, []).append(
                (code_dim, r["test_perplexity"], f"d'={code_dim}")
            )
    if full is None or not series:
        return None
    first = "linear" if "linear" in series else next(iter(series))
    dims = sorted({p[0] for curve in series.values() for p in curve})
    return plot_compression_curve(
        series.pop(first), baseline=full["test_perplexity"], out=png,
        ylabel="test perplexity (PTB)", xlabel="code-embedding dimension d'",
        title="KD codes on PTB: perplexity against d' (supplement fig. 1)",
        series=f"{first} composition", extra={f"{k} composition": v for k, v in series.items()},
        xticks=dims, more_baselines=other_teachers(rows, full["test_perplexity"]),
    )  # fmt: skip


def other_teachers(rows: list[dict[str, Any]], full: float) -> dict[str, float]:
    """Teachers other than the ``full`` row that figure-1 rows distilled from (their
    ``teacher_test_perplexity``: the teacher trained again), by legend name."""
    found: dict[float, set[str]] = {}
    for r in rows:
        teacher = r.get("teacher_test_perplexity")
        if r.get("figure1") and teacher is not None and teacher != full:
            found.setdefault(teacher, set()).add(r["figure1"][0])
    return {f"full table trained again ({t:.1f}): teacher of {' and '.join(sorted(c))} rows": t
            for t, c in sorted(found.items())}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path, help="the grid's JSON (runs/kd-lm/kd-lm-ptb.json)")
    parser.add_argument("--png", type=Path, default=None, help="where to draw figure 1")
    args = parser.parse_args(argv)
    grid = json.loads(args.grid.read_text(encoding="utf-8"))
    rows = summarize(grid)
    print(markdown(rows))
    drawn = figure1(rows, args.png) if args.png else None
    result = {"grid": str(args.grid), "budget": grid.get("budget"), "rows": rows,
              "figure1": str(drawn) if drawn else None}  # fmt: skip
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
