"""Markdown table of an SSE/MF sweep JSON written by ``benchmarks/sse_mf_tables.py``.

Usage: ``.venv/bin/python benchmarks/sse_mf_report.py docs/sse-mf-ml-1m.json [--init normal-0.1]``
(prints the table that docs/sse.md quotes; every number comes from the file). ``--init``: each
method selected among the configurations with that initializer only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from embedlab.config.io import apply_overrides

#: shipped config file of each method (configs/mf/<table>/<file>.yaml)
CONFIG_FILES = {
    "SGD-MF": "sgd-mf",
    "SSE-SE + SGD-MF": "sse-se",
    "SSE-Graph + SGD-MF": "sse-graph",
    "SSE-SE + dropout + SGD-MF": "sse-se-dropout",
    "ALS-MF": "als-mf",
    "Graph Laplacian + ALS-MF": "grals",
    "SGD-MF + dropout": "sgd-mf-dropout",
    "SGD-MF + SSE-SE": "sse-se",
    "SGD-MF + SSE-SE + dropout": "sse-se-dropout",
}

SHOWN = ("init.name", "weight_decay", "sse.p", "sse.rho", "dropout", "train.lr", "laplacian.user")


def _settings(overrides: list[str]) -> str:
    """The swept keys of one configuration (user-table keys stand for both tables)."""
    kept: dict[str, str] = {}
    for item in overrides:
        key, _, value = item.partition("=")
        if key.startswith("item_embedding.") or key.endswith("laplacian.item"):
            continue
        short = key.removeprefix("user_embedding.").removeprefix("train.")
        if any(key.endswith(s) for s in SHOWN) and short not in kept:
            kept[short] = value
    return ", ".join(f"{k} {v}" for k, v in kept.items())


def _row(method: str, entry: dict[str, Any], configs: int) -> str:
    sel = entry["selected"]
    seeds = " / ".join(f"{entry['seeds'][s]['test_rmse']:.4f}" for s in sorted(entry["seeds"]))
    return (
        f"| {method} | {_settings(sel['overrides'])} | {configs} | {sel['valid_rmse']:.4f} "
        f"| {seeds} | {entry['test_rmse_mean']:.4f} ± {entry['test_rmse_sd']:.4f} |"
    )


def table(data: dict[str, Any], init: str | None = None) -> str:
    """One row per method: its selection over all configurations (``init`` None), or over the
    configurations with initializer ``init`` only (the initializer held equal)."""
    lines = [
        "| method | selected configuration | configs | valid RMSE (seed 0) | test RMSE seeds 0 / 1 / 2 | mean ± sd |",
        "| --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for method, entry in data["methods"].items():
        count = len(entry["configs"])
        if init is None:
            lines.append(_row(method, entry, count))
        else:
            lines.append(_row(method, entry["by_init"][init], count // len(entry["by_init"])))
    return "\n".join(lines)


def write_configs(data: dict[str, Any], init: str, folder: Path, sweep: Path) -> None:
    """One YAML per method: its selected configuration with initializer ``init`` (held equal
    across the methods), without the sweep's thread setting."""
    folder.mkdir(parents=True, exist_ok=True)
    for method, entry in data["methods"].items():
        selected = entry["by_init"][init]["selected"]
        over = [o for o in selected["overrides"] if not o.startswith("train.num_threads")]
        config = apply_overrides({}, over)
        header = (
            f"# {method}: selected by valid RMSE among the {init} configurations of\n"
            f"# benchmarks/sse_mf_tables.py --table {data['table']} ({sweep}:\n"
            f"# trial {selected['trial']} of the tune study over {entry['space']});\n"
            "# the initializer is the same in every config of this folder (docs/sse.md).\n"
        )
        text = header + yaml.safe_dump(config, sort_keys=False)
        (folder / f"{CONFIG_FILES[method]}.yaml").write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--init", help="the initializer held equal (a key of the sweep's inits)")
    parser.add_argument("--write-configs", type=Path, help="folder for the selected configs")
    args = parser.parse_args()
    data = json.loads(args.sweep.read_text(encoding="utf-8"))
    print(table(data, args.init))
    if args.write_configs is not None:
        if args.init is None:
            raise SystemExit("--write-configs needs --init (one initializer for every method)")
        write_configs(data, args.init, args.write_configs, args.sweep)


if __name__ == "__main__":
    main()
