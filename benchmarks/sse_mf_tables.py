"""SSE on matrix factorization: the sweeps behind docs/sse.md's ML-1M and Douban tables, run
with ``embedlab tune``.

Each method is a search space, ``configs/tune/sse-mf-<table>/<method>.yaml`` over that folder's
``base.yaml``: a ``group`` of hand-paired settings times a ``group`` of two initializers (the
initializer is swept for every method alike; it confounded an earlier SSE-vs-SGD comparison).
ML-1M: 6 settings x 2 = 12 configurations per method; Douban: 4 x 2 = 8. Every configuration is
one trial of one Optuna study per method (``--sampler grid --pruner none``: each runs once, to the
end; studies in ``<runs>/<table>/studies.db``, trials in ``<runs>/<table>/<method>/trial-NNNN``),
with 5% of the training ratings held out as ``valid`` (seed 0). The trial's value is the valid
RMSE of its best epoch. Per method the best trial over all configurations, and over each
initializer's, is re-run with seeds 1 and 2 (the seed also draws the valid hold-out); the table
reports test RMSE mean ± sd over seeds 0, 1, 2. Nothing is tuned on test.

Usage::

    EMBEDLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/sse_mf_tables.py \\
        --table ml-1m --runs runs/sse-mf --out docs/sse-mf-ml-1m.json [--jobs 2]

Resumable: re-running continues each study in its SQLite database and reads finished seed runs
back; ``--out`` is rewritten after every study and seed run. The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

from embedlab.config.io import build_typed_config, load_yaml
from embedlab.recsys.config import MfConfig
from embedlab.recsys.run import train_mf
from embedlab.training.run_dir import flatten
from embedlab.tune.space import Group, grid, load_space
from embedlab.tune.study import StudyConfig, run_study
from embedlab.tune.summary import override

SPACES = Path(__file__).resolve().parents[1] / "configs" / "tune"
#: method (as docs/sse.md names it) -> its search space file (without .yaml), in table order
METHODS = {
    "ml-1m": {
        "SGD-MF": "sgd-mf",
        "SSE-SE + SGD-MF": "sse-se+sgd-mf",
        "SSE-Graph + SGD-MF": "sse-graph+sgd-mf",
        "SSE-SE + dropout + SGD-MF": "sse-se+dropout+sgd-mf",
        "ALS-MF": "als-mf",
        "Graph Laplacian + ALS-MF": "graph-laplacian+als-mf",
    },
    "douban": {
        "SGD-MF": "sgd-mf",
        "SGD-MF + dropout": "sgd-mf+dropout",
        "SGD-MF + SSE-SE": "sgd-mf+sse-se",
        "SGD-MF + SSE-SE + dropout": "sgd-mf+sse-se+dropout",
    },
}
SEEDS = (0, 1, 2)


def configurations(table: str, slug: str) -> list[dict[str, Any]]:
    """Every configuration of one method as the full flat config it trains (base + space),
    in the grid's order; what the study runs, one trial each."""
    folder = SPACES / f"sse-mf-{table}"
    base = flatten(load_yaml(folder / "base.yaml"))
    space = load_space(folder / f"{slug}.yaml")
    combos: list[dict[str, Any]] = [{}]
    for key, values in grid(space).items():
        dist = space[key]
        combos = [
            {**c, **(dist.choices[v] if isinstance(dist, Group) else {key: v})}
            for c in combos
            for v in values
        ]
    return [{**base, **c} for c in combos]


def _result(run_dir: Path) -> dict[str, Any]:
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return {
        "valid_rmse": metrics["valid"]["rmse"],
        "test_rmse": metrics["test"]["rmse"],
        "test_mae": metrics["test"]["mae"],
        "best_epoch": metrics["best_epoch"],
        "epoch_seconds_median": metrics["timing"]["epoch_seconds_median"],
    }


def _overrides(base: Path, settings: dict[str, Any]) -> list[str]:
    """The configuration as ``key=value`` items (base then the trial's settings)."""
    flat = {**flatten(load_yaml(base)), **settings}
    return [f"{k}={v}" if isinstance(v, int | float | str) and not isinstance(v, bool)
            else override(k, v) for k, v in flat.items()]  # fmt: skip


def _seed_run(base: Path, settings: dict[str, Any], seed: int, run_dir: Path) -> dict[str, Any]:
    """The selected configuration with another seed (a finished run directory is read back)."""
    if not (run_dir / "metrics.json").is_file():
        items = [override(k, v) for k, v in settings.items()] + [f"seed={seed}"]
        train_mf(build_typed_config(MfConfig, path=base, overrides=items), run_dir, progress=False)
    return {"overrides": [*_overrides(base, settings), f"seed={seed}"], **_result(run_dir)}


def run_method(table: str, slug: str, runs: Path, jobs: int) -> dict[str, Any]:
    """Run (or continue) one method's study; its configurations as table rows."""
    folder = SPACES / f"sse-mf-{table}"
    base, space = folder / "base.yaml", folder / f"{slug}.yaml"
    (runs / table).mkdir(parents=True, exist_ok=True)
    summary = run_study(
        StudyConfig(
            base=base, space=space, trials=math.prod(len(v) for v in grid(load_space(space)).values()),
            storage=f"sqlite:///{(runs / table / 'studies.db').resolve()}", out=runs / table / slug,
            jobs=jobs, study_name=slug, task="mf", sampler="grid", pruner="none",
        )
    )  # fmt: skip
    failed = [t for t in summary["trials"] if t["state"] == "FAIL" and t["error"]]
    if failed:
        raise SystemExit(
            f"{table}/{slug}: trial {failed[0]['number']} failed: {failed[0]['error']}"
        )
    done = sorted(
        (t for t in summary["trials"] if t["state"] == "COMPLETE"), key=lambda t: t["number"]
    )
    return {
        "space": str(space.relative_to(SPACES.parents[1])),
        "configs": [
            {"trial": t["number"], "params": t["params"], "settings": t["settings"],
             "overrides": _overrides(base, t["settings"]), **_result(Path(t["run_dir"]))}
            for t in done
        ],
    }  # fmt: skip


def select(entry: dict[str, Any], indices: list[int], base: Path, runs: Path) -> dict[str, Any]:
    """The best of ``entry["configs"][indices]`` by valid RMSE, with its seed runs."""
    best = min(indices, key=lambda k: entry["configs"][k]["valid_rmse"])
    chosen = entry["configs"][best]
    seeds = {"0": chosen}  # the sweep's own run (the base config has no seed: the default, 0)
    for seed in SEEDS[1:]:
        run_dir = runs / f"trial-{chosen['trial']:04d}-seed{seed}"
        seeds[str(seed)] = _seed_run(base, chosen["settings"], seed, run_dir)
    tests = [seeds[str(s)]["test_rmse"] for s in SEEDS]
    return {
        "selected": {"index": best, **chosen}, "seeds": seeds,
        "test_rmse_mean": statistics.mean(tests), "test_rmse_sd": statistics.stdev(tests),
    }  # fmt: skip


def run_table(table: str, runs: Path, out: Path | None, jobs: int) -> dict[str, Any]:
    """Every method's study, then its selections (over all configurations and per initializer)."""
    results: dict[str, Any] = {}
    base = SPACES / f"sse-mf-{table}" / "base.yaml"
    inits: dict[str, Any] = {}

    def save() -> None:
        if out is not None:
            meta = {"table": table, "seeds": list(SEEDS), "inits": inits,
                    "base": str(base.relative_to(SPACES.parents[1]))}  # fmt: skip
            out.write_text(json.dumps({**meta, "methods": results}, indent=1), encoding="utf-8")

    for method, slug in METHODS[table].items():
        entry = run_method(table, slug, runs, jobs)
        results[method] = entry
        save()
        init_group = load_space(SPACES / f"sse-mf-{table}" / f"{slug}.yaml")["init"]
        assert isinstance(init_group, Group)
        inits = {name: [f"{k}={v}" for k, v in s.items()] for name, s in init_group.choices.items()}
        configs = entry["configs"]
        entry.update(select(entry, list(range(len(configs))), base, runs / table / slug))
        save()
        for name in inits:  # the initializer held at one value
            indices = [k for k, c in enumerate(configs) if c["params"]["init"] == name]
            entry.setdefault("by_init", {})[name] = select(
                entry, indices, base, runs / table / slug
            )
            save()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", choices=sorted(METHODS), required=True)
    parser.add_argument("--runs", type=Path, default=Path("runs/sse-mf"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--jobs", type=int, default=1, help="trials run in parallel (1 thread each)"
    )
    args = parser.parse_args()
    results = run_table(args.table, args.runs, args.out, args.jobs)
    for method, res in results.items():
        sel = res["selected"]
        print(
            f"| {method} | {res['test_rmse_mean']:.4f} ± {res['test_rmse_sd']:.4f} "
            f"| {sel['valid_rmse']:.4f} | {len(res['configs'])} |"
        )
    print(json.dumps({m: r["test_rmse_mean"] for m, r in results.items()}))


if __name__ == "__main__":
    main()
