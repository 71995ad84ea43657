"""The command line every experiment grid shares (benchmarks/table2_grid.py, kd_lm_grid.py,
sse_nmt_grid.py): run and result locations, threads, ``--list``, ``--only``, ``--set``
overrides (refused where the grid sets the key itself) and ``--parallel``. The queue that runs
the cells: benchmarks/cell_queue.py."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from cell_queue import ROOT


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def grid_parser(
    description: str,
    *,
    runs: str,
    json_path: str,
    overrides: bool = True,
    parallel: bool = False,
) -> argparse.ArgumentParser:
    """The options every grid has: ``--runs``, ``--json``, ``--threads``, ``--list``, ``--only``,
    ``--embedlab``, (``overrides``) ``--set KEY=VALUE`` and (``parallel``, only for grids whose
    budget is epochs, not minutes) ``--parallel N``; defaults under the repository root."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=Path, default=ROOT / runs, help="run directories")
    parser.add_argument(
        "--json", type=Path, default=ROOT / json_path, help="results, one row per cell"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads per cell")
    parser.add_argument("--list", action="store_true", help="print each cell's state, run nothing")
    parser.add_argument("--only", nargs="*", default=None, help="run only these cell keys")
    parser.add_argument("--embedlab", type=Path, default=Path(sys.executable).parent / "embedlab")
    if overrides:
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override added to every cell (e.g. a tiny budget for a smoke "
                                 "test); recorded in the JSON's budget")  # fmt: skip
    if parallel:
        parser.add_argument("--parallel", type=positive_int, default=1,
                            help="cells trained at once (the budget is epochs, so this changes "
                                 "only the wall time; e.g. --parallel 2 --threads 1 on 2 cores)")  # fmt: skip
    return parser


def parse_grid_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse; ``runs`` made absolute.

    Raises:
        SystemExit: ``--embedlab`` is not an executable.
    """
    args = parser.parse_args(argv)
    args.runs = args.runs.resolve()
    if not shutil.which(str(args.embedlab)):
        raise SystemExit(f"{args.embedlab} not found (pass --embedlab)")
    return args


def refuse_overrides(extra: Sequence[str], taken: set[str]) -> None:
    """Refuse ``--set KEY=VALUE`` overrides whose KEY the grid sets itself (``taken``): they would
    silently replace what distinguishes its cells or what its recorded budget says.

    Raises:
        SystemExit: naming the clashing keys.
    """
    clash = sorted({item.split("=", 1)[0] for item in extra} & taken)
    if clash:
        raise SystemExit(f"--set {', '.join(clash)}: the grid sets these keys itself (per cell or "
                         "from its own options); change the grid's options instead")  # fmt: skip
