"""Markdown table of Table-2 runs (one run directory per ``<model>-<loss>``) beside paper 002's
Table 2 numbers. Usage: ``python benchmarks/table2_report.py runs/wn18rr-table2 [--json OUT]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# paper 002, table 2, WN18RR: MRR, Hits@1, Hits@3, Hits@10
PAPER_WN18RR = {
    "tucker": {"ns": (0.431, 0.407, 0.440, 0.473), "sans": (0.445, 0.421, 0.455, 0.489),
               "sce": (0.453, 0.424, 0.465, 0.507), "sce_ls": (0.472, 0.441, 0.483, 0.528)},
    "rescal": {"ns": (0.385, 0.354, 0.405, 0.437), "sans": (0.389, 0.363, 0.404, 0.434),
               "sce": (0.451, 0.417, 0.470, 0.512), "sce_ls": (0.469, 0.435, 0.485, 0.529)},
    "complex": {"ns": (0.394, 0.373, 0.403, 0.432), "sans": (0.432, 0.407, 0.442, 0.480),
                "sce": (0.463, 0.434, 0.473, 0.521), "sce_ls": (0.477, 0.441, 0.491, 0.546)},
    "distmult": {"ns": (0.389, 0.374, 0.394, 0.416), "sans": (0.410, 0.386, 0.419, 0.452),
                 "sce": (0.438, 0.407, 0.447, 0.497), "sce_ls": (0.448, 0.410, 0.460, 0.527)},
    "transe": {"ns": (0.218, 0.011, 0.390, 0.510), "sans": (0.219, 0.016, 0.394, 0.514),
               "sce": (0.229, 0.054, 0.366, 0.523), "sce_ls": (0.229, 0.054, 0.369, 0.522)},
    "rotate": {"ns": (0.469, 0.429, 0.484, 0.547), "sans": (0.472, 0.431, 0.487, 0.550),
               "sce": (0.452, 0.423, 0.463, 0.507), "sce_ls": (0.447, 0.417, 0.461, 0.502)},
}  # fmt: skip
MODELS = ["tucker", "rescal", "complex", "distmult", "transe", "rotate"]
LOSSES = ["ns", "sans", "sce", "sce_ls"]
LABEL = {"ns": "NS", "sans": "SANS", "sce": "SCE", "sce_ls": "SCE w/ LS"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows, out = [], {}
    header = ("| model | loss | test MRR | H@1 | H@3 | H@10 | epochs | training rows | "
              "paper MRR | paper H@10 |")  # fmt: skip
    rows += [header, "|" + " --- |" * 10]
    for m in MODELS:
        for loss in LOSSES:
            path = args.runs / f"{m}-{loss}" / "metrics.json"
            paper = PAPER_WN18RR[m][loss]
            if not path.is_file():
                rows.append(
                    f"| {m} | {LABEL[loss]} | (not run) | | | | | | {paper[0]:.3f} | {paper[3]:.3f} |"
                )
                continue
            met = json.loads(path.read_text())
            t, timing = met["test"], met["timing"]
            out[f"{m}-{loss}"] = {"test": {k: t[k] for k in ("mrr", "hits@1", "hits@3", "hits@10")},
                                  "valid_mrr": met["valid"]["mrr"], "timing": timing,
                                  "paper": dict(zip(("mrr", "hits@1", "hits@3", "hits@10"), paper, strict=True))}  # fmt: skip
            rows.append(
                f"| {m} | {LABEL[loss]} | {t['mrr']:.3f} | {t['hits@1']:.3f} | {t['hits@3']:.3f} | "
                f"{t['hits@10']:.3f} | {timing['epochs']} | {timing['rows']} rows | "
                f"{paper[0]:.3f} | {paper[3]:.3f} |"
            )
    print("\n".join(rows))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
