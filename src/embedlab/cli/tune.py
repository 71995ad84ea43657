"""``embedlab tune``: hyper-parameter search with Optuna over any config key of any task."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from embedlab.tune.study import StudyConfig, run_study


def tune(
    config: Path = typer.Option(..., "--config", help="base config YAML (KGE, MF, LM, NMT or GCN)"),
    space: Path = typer.Option(
        ...,
        "--space",
        help="search space YAML: key: {type: float|int|categorical, ...}, or "
        "label: {type: group, choices: {name: {key: value, ...}}} for paired settings",
    ),
    trials: int = typer.Option(..., "--trials", min=1, help="finished trials wanted in the study"),
    storage: str = typer.Option(
        ..., "--storage", help="Optuna storage URL, e.g. sqlite:///study.db (resumable)"
    ),
    out: Path = typer.Option(
        ..., "--out", help="directory for trial-NNNN run directories and the summary"
    ),
    jobs: int = typer.Option(1, "--jobs", min=1, help="trials run in parallel"),
    study_name: str | None = typer.Option(None, "--study-name", help="default: name of --out"),
    task: str | None = typer.Option(
        None, "--task", help="kge | mf | lm | nmt | gcn (default: detected)"
    ),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe | random | grid"),
    pruner: str = typer.Option("median", "--pruner", help="median | none"),
    seed: int = typer.Option(0, "--seed", help="the sampler's seed"),
    set_: list[str] = typer.Option(
        [], "--set", help="override a config key in every trial, e.g. --set train.max_epochs=20"
    ),
) -> None:
    """Search hyper-parameters: each trial is `embedlab <task> train` in DIR/trial-NNNN.

    The objective is the validation metric of the task (KGE: MRR and GCN: node accuracy,
    maximized; MF: RMSE, LM: perplexity and NMT: per-token loss, minimized) of each trial's best
    checkpoint. Trials are pruned by Optuna's
    median pruner from the `valid` events of their trace.jsonl. Re-running the same command
    continues the study in its storage; an interrupted trial resumes from its checkpoint.
    Writes DIR/summary.json, DIR/best.yaml (ready for `train --config`) and DIR/history.png.
    """
    summary = run_study(
        StudyConfig(
            base=config, space=space, trials=trials, storage=storage, out=out, jobs=jobs,
            study_name=study_name, task=task, sampler=sampler, pruner=pruner,
            seed=seed, overrides=list(set_),
        )
    )  # fmt: skip
    counts = ", ".join(f"{n} {state.lower()}" for state, n in summary["counts"].items())
    typer.echo(f"study {summary['study']}: {counts}")
    if summary["best"] is not None:
        best = summary["best"]
        typer.echo(
            f"best: trial {best['number']}, valid {summary['metric'].split()[-1]} "
            f"{best['value']:.6g}, {json.dumps(best['params'])}"
        )
        typer.echo(f"wrote {out / 'summary.json'}, {out / 'best.yaml'}, {out / 'history.png'}")
