"""``embedlab plot trace RUN_DIR... --out FILE.png``."""

from __future__ import annotations

from pathlib import Path

import typer

from embedlab.plots import plot_trace

app = typer.Typer(help="Plots from run directories (PNG).", no_args_is_help=True)


@app.command()
def trace(
    run_dirs: list[Path] = typer.Argument(..., help="one or more run directories"),
    out: Path = typer.Option(..., "--out", help="output PNG"),
    metric: str = typer.Option("mrr", help="validation metric to plot"),
    title: str = typer.Option("", help="plot title"),
) -> None:
    """Validation metric against training time, read from each run's trace.jsonl."""
    typer.echo(f"wrote {plot_trace(run_dirs, out, metric=metric, title=title)}")
