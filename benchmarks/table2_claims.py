"""Tables and paper 002's claims, checked one by one, from the grid JSON of ``table2_grid.py``.

Prints markdown: one table per section (test MRR / Hits@1 / Hits@10, epochs, training rows,
peak memory, beside the paper's MRR) and one line per claim of sections 6.2-6.3 with the numbers
it rests on and ``holds`` / ``does not hold`` / ``not measured`` (a cell missing) /
``inconclusive`` (every cell it rests on stayed below ``--learned`` test MRR: near-random
rankings, where an ordering says nothing about the losses). Each claim is compared on test MRR,
as the paper's text does; a difference below ``--tie`` counts as a tie.

Usage: ``python benchmarks/table2_claims.py docs/table2-wn18rr.json [--tie 0.002] [--learned 0.05]``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from table2_report import LABEL, LOSSES, MODELS

UNBOUNDED = ["tucker", "rescal", "complex", "distmult"]
BOUNDED = ["transe", "rotate"]


def table(cells: dict, section: str, models: list[str]) -> list[str]:
    rows = [
        "| model | loss | test MRR | H@1 | H@10 | epochs | training rows | peak GiB | paper MRR |",
        "|" + " --- |" * 9,
    ]
    for m in models:
        for loss in LOSSES:
            cell = cells.get(f"{section}/{m}-{loss}")
            if cell is None:
                rows.append(f"| {m} | {LABEL[loss]} | (not run yet) | | | | | | |")
                continue
            paper = cell.get("paper", {}).get("mrr", float("nan"))
            if "test" not in cell:
                rows.append(f"| {m} | {LABEL[loss]} | failed (exit {cell['returncode']}) | | | | "
                            f"| {cell['peak_rss_gib']} | {paper:.3f} |")  # fmt: skip
                continue
            t, timing = cell["test"], cell["timing"]
            rows.append(
                f"| {m} | {LABEL[loss]} | {t['mrr']:.3f} | {t['hits@1']:.3f} | {t['hits@10']:.3f} | "
                f"{timing['epochs']} | {timing['rows']:,} | {cell['peak_rss_gib']:.2f} | {paper:.3f} |"
            )
    return rows


def table3(cells: dict) -> list[str]:
    rows = ["| ComplEx + SCE w/ LS, pre-trained with | test MRR | H@1 | H@10 | paper MRR |",
            "|" + " --- |" * 5]  # fmt: skip
    base = cells.get("wn18rr/complex-sce_ls")
    order = [("- (table 2 cell)", base)] + [
        (LABEL.get(p, "SCE w/ BC"), cells.get(f"table3/complex-sce_ls-from-{p}"))
        for p in ("sce", "sce_bc", "sce_ls")
    ]
    paper = {"- (table 2 cell)": 0.477, "SCE": 0.477, "SCE w/ BC": 0.469, "SCE w/ LS": 0.481}
    for name, cell in order:
        if cell is None or "test" not in cell:
            rows.append(f"| {name} | (not run yet) | | | {paper[name]:.3f} |")
        else:
            t = cell["test"]
            rows.append(f"| {name} | {t['mrr']:.3f} | {t['hits@1']:.3f} | {t['hits@10']:.3f} | "
                        f"{paper[name]:.3f} |")  # fmt: skip
    return rows


def claims(cells: dict, tie: float, learned: float) -> list[str]:
    def mrr(key: str) -> float | None:
        cell = cells.get(key)
        return cell["test"]["mrr"] if cell and "test" in cell else None

    def check(text: str, keys: list[str], rule: Callable[..., bool]) -> str:
        values = [mrr(k) for k in keys]
        shown = ", ".join(f"{k.split('/')[-1]} {v:.3f}" if v is not None else f"{k} -"
                          for k, v in zip(keys, values, strict=True))  # fmt: skip
        if any(v is None for v in values):
            return f"- {text}: not measured ({shown})"
        if all(v < learned for v in values if v is not None):
            return f"- {text}: inconclusive, no cell reached MRR {learned} ({shown})"
        verdict = "holds" if rule(*values) else "does not hold"
        return f"- {text}: **{verdict}** ({shown})"

    def ge(a: float, b: float) -> bool:
        return a >= b - tie

    out = []
    for ds in ("wn18rr", "fb15k-237"):
        models = MODELS if ds == "wn18rr" else ["complex", "rotate"]
        for m in models:
            k = {loss: f"{ds}/{m}-{loss}" for loss in LOSSES}
            if m in UNBOUNDED:
                out.append(check(f"{ds} {m}: SCE > NS (unbounded score, 6.2.2)", [k["sce"], k["ns"]],
                                 lambda a, b: a > b + tie))  # fmt: skip
            else:
                out.append(check(f"{ds} {m}: best NS-family >= best SCE-family (bounded score, 6.2.2)",
                                 [k["ns"], k["sans"], k["sce"], k["sce_ls"]],
                                 lambda a, b, c, d: ge(max(a, b), max(c, d))))  # fmt: skip
            out.append(check(f"{ds} {m}: SCE w/ LS >= SCE (table 2)", [k["sce_ls"], k["sce"]], ge))
            out.append(check(f"{ds} {m}: SANS >= NS (table 2)", [k["sans"], k["ns"]], ge))
            out.append(check(f"{ds} {m}: LS helps SCE iff SANS helps NS (6.2.1)",
                             [k["sce_ls"], k["sce"], k["sans"], k["ns"]],
                             lambda a, b, c, d: (a - b > tie) == (c - d > tie)))  # fmt: skip
    pre = {p: f"table3/complex-sce_ls-from-{p}" for p in ("sce", "sce_bc", "sce_ls")}
    base = "wn18rr/complex-sce_ls"
    out.append(check("table 3: pre-training with SCE w/ BC does not beat no pre-training (6.3)",
                     [pre["sce_bc"], base], lambda a, b: a <= b + tie))  # fmt: skip
    out.append(check("table 3: pre-training with SCE w/ LS beats no pre-training (6.3)",
                     [pre["sce_ls"], base], lambda a, b: a > b + tie))  # fmt: skip
    out.append(check("table 3: SCE w/ LS pre-training >= SCE w/ BC pre-training (6.3)",
                     [pre["sce_ls"], pre["sce_bc"]], ge))  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid_json", type=Path)
    parser.add_argument("--tie", type=float, default=0.002, help="MRR difference counted as a tie")
    parser.add_argument("--learned", type=float, default=0.05,
                        help="below this test MRR in every cell of a claim: inconclusive")  # fmt: skip
    args = parser.parse_args()
    data = json.loads(args.grid_json.read_text())
    cells = data.get("cells", {})
    print(f"Budget: {json.dumps(data.get('budget', {}))}\n")
    print("\n".join(["### WN18RR", ""] + table(cells, "wn18rr", MODELS)))
    print("\n".join(["", "### FB15k-237", ""] + table(cells, "fb15k-237", ["complex", "rotate"])))
    print("\n".join(["", "### Table 3, WN18RR", ""] + table3(cells)))
    print("\n".join(["", f"### Claims (test MRR; |difference| <= {args.tie} is a tie)", ""]
                    + claims(cells, args.tie, args.learned)))  # fmt: skip


if __name__ == "__main__":
    main()
