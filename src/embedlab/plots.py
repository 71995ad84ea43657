"""Plots (matplotlib, PNG): training curves read from ``trace.jsonl``."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from embedlab.errors import UserError
from embedlab.training.trace import events_of_final_history, read_trace


def new_figure(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A figure with one axes, independent of pyplot and of any GUI backend."""
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def save_png(fig: Figure, path: Path) -> Path:
    """Lay out ``fig`` and write it to ``path`` (120 dpi; parent folders are created)."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def plot_trace(run_dirs: list[Path], out: Path, *, metric: str = "mrr", title: str = "") -> Path:
    """Validation ``metric`` against wall-clock minutes for each run directory.

    Raises:
        UserError: a directory without ``trace.jsonl`` or without validation events.
    """
    fig, ax = new_figure((6.4, 4.0))
    for run_dir in run_dirs:
        path = run_dir / "trace.jsonl"
        if not path.is_file():
            raise UserError(f"{run_dir} has no trace.jsonl")
        events = read_trace(path)
        valid = events_of_final_history(events, "valid")
        if not valid:
            raise UserError(f"{path} has no validation events")
        minutes = [e["seconds"] / 60 for e in valid]
        ax.plot(minutes, [e[metric] for e in valid], marker=".", label=run_dir.name)
        tests = [e for e in events if e["event"] == "test"]
        if tests:
            ax.axhline(
                tests[-1][metric], linestyle=":", linewidth=1, color=ax.lines[-1].get_color()
            )
    ax.set_xlabel("training time (minutes, incl. validation)")
    ax.set_ylabel(f"filtered valid {metric.upper()} (dotted: final test)")
    ax.set_title(title or "validation curve")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, out)
