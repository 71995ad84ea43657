"""Collect the PTB KD-code runs of benchmarks/kd_lm_ptb.sh into one JSON table (docs/kd.md).

Usage: .venv/bin/python benchmarks/kd_lm_table.py runs/kd-lm --out docs/kd-lm-ptb.json
Rows: the full-table teacher, the supplement's table-1 ablation and the smaller setting, with test
and valid perplexity, the embedding compression ratio and the paper's perplexity (a larger
model, 13+ epochs: not comparable in absolute terms). Last stdout line: JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Supplement table 1 (paper 003); the paper's model is larger than Zaremba's small model.
PAPER = {
    "1-cr": ("CR", 90.61),
    "2-cr-ste": ("CR + STE", 90.15),
    "3-cr-ste-temperature": ("CR + STE + temperature scheduling", 89.55),
    "4-cr-ste-entropy": ("CR + STE + entropy reg", 89.03),
    "5-pdg": ("CR + STE + entropy reg + PDG (w/o autoencod.)", 83.71),
    "6-pdg-autoencode": ("CR + STE + entropy reg + PDG (w/ autoencod.)", 83.11),
    "k16-d8": ("K=16, D=8 (recipe of CR + STE + entropy reg)", None),
    "full": ("full embedding table (teacher)", None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    full = None
    for name, (label, paper) in PAPER.items():
        path = args.runs / name / "metrics.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text(encoding="utf-8"))
        comp = m.get("compression") or {}
        row = {
            "run": name,
            "variant": label,
            "test_perplexity": m["test"]["perplexity"],
            "valid_perplexity": m["valid"]["perplexity"],
            "embedding_ratio": comp.get("ratio", 1.0),
            "embedding_bits_saved": 1.0 - 1.0 / comp.get("ratio", 1.0),
            "model_ratio": comp.get("model_ratio", 1.0),
            "epochs": m["timing"].get("epochs"),
            "paper_perplexity": paper,
        }
        if name == "full":
            full = row["test_perplexity"]
        rows.append(row)
    for row in rows:
        if full is not None:
            row["perplexity_increase"] = row["test_perplexity"] / full - 1.0
        print(
            f"| {row['variant']} | {row['test_perplexity']:.2f} | {row['valid_perplexity']:.2f} "
            f"| {row['embedding_ratio']:.1f}x | {100 * row['embedding_bits_saved']:.1f}% "
            f"| {row['paper_perplexity'] or '-'} |"
        )
    result = {"runs": str(args.runs), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
