"""Plots (matplotlib, PNG): training curves read from ``trace.jsonl``; 3-D embedding projections."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, cast

import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from mpl_toolkits.mplot3d import Axes3D

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


def plot_compression_curve(
    points: list[tuple[float, float, str]],
    *,
    baseline: float,
    out: Path,
    ylabel: str,
    title: str,
    series: str = "KD codes",
    extra: dict[str, list[tuple[float, float, str]]] | None = None,
    xlabel: str = "embedding compression ratio (fp32 bits / KD bits)",
    xticks: list[float] | None = None,
    more_baselines: dict[str, float] | None = None,
) -> Path:
    """Quality against compression ratio (log x axis) with the uncompressed ``baseline`` as a
    dashed line; ``points`` are ``(ratio, value, label)`` (docs/kd.md's KGE and LM figures).
    ``more_baselines``: further horizontal lines by legend name (e.g. a teacher trained again).

    ``extra``: further curves by legend name (e.g. the reconstruction-only curve beside the
    end-to-end one), drawn without point labels. ``xlabel``: another x quantity on the same log
    axis (supplement figure 1: the code-embedding dimension d'). ``xticks``: label exactly these
    x values, as plain numbers (instead of the log axis' powers of ten)."""
    fig, ax = new_figure((6.4, 4.0))
    ordered = sorted(points)
    ax.plot([p[0] for p in ordered], [p[1] for p in ordered], marker="o", label=series)
    for ratio, value, label in ordered:
        ax.annotate(label, (ratio, value), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for name, curve in (extra or {}).items():
        more = sorted(curve)
        ax.plot([p[0] for p in more], [p[1] for p in more], marker="s", linestyle=":", label=name)
    ax.axhline(baseline, linestyle="--", color="grey", label="full table (1x)")
    for name, value in (more_baselines or {}).items():
        ax.axhline(value, linestyle="-.", color="dimgrey", linewidth=0.8, label=name)
    ax.set_xscale("log")
    if xticks:
        ax.set_xticks(xticks, [f"{x:g}" for x in xticks])
        ax.set_xticks([], minor=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save_png(fig, out)


def plot_trace(
    run_dirs: list[Path],
    out: Path,
    *,
    metric: str | None = None,
    title: str = "",
    ylim: tuple[float, float] | None = None,
    styles: dict[str, dict[str, Any]] | None = None,
    x_axis: str = "minutes",
) -> Path:
    """Validation ``metric`` against wall-clock minutes (or epochs) for each run directory (any
    task).

    ``metric`` ``None``: each run's model-selection metric, named in its trace's ``start``
    event (KGE ``mrr``, MF ``rmse``, LM ``loss``; ``mrr`` for traces written before it was).
    ``ylim``: (bottom, top) of the y axis, to zoom in on the end of the curves; ``None``: all.
    ``styles``: matplotlib line keywords per run directory name (e.g. one colour per variant and
    one line style per seed); runs not named get the default colour cycle.
    ``x_axis``: ``"minutes"`` (training time including validation, from the trace's
    ``seconds``) or ``"epoch"`` (compares runs that trained at different speeds, e.g. with more
    runs sharing the machine).

    Raises:
        ValueError: ``x_axis`` is neither ``"minutes"`` nor ``"epoch"``.
        UserError: a directory without ``trace.jsonl``, without validation events, or whose
            validation events lack ``metric``.
    """
    if x_axis not in ("minutes", "epoch"):
        raise ValueError(f"x_axis must be 'minutes' or 'epoch', got {x_axis!r}")
    fig, ax = new_figure((6.4, 4.0))
    names = set()
    for run_dir in run_dirs:
        path = run_dir / "trace.jsonl"
        if not path.is_file():
            raise UserError(f"{run_dir} has no trace.jsonl")
        events = read_trace(path)
        valid = events_of_final_history(events, "valid")
        if not valid:
            raise UserError(f"{path} has no validation events")
        starts = [e for e in events if e["event"] == "start"]
        key = metric or (starts[0].get("metric") if starts else None) or "mrr"
        if any(key not in e for e in valid):
            found = sorted(k for k, v in valid[-1].items() if isinstance(v, int | float))
            raise UserError(
                f"{path}: validation events have no {key!r}; choose --metric from {found}"
            )
        names.add(key)
        xs = [e["seconds"] / 60 if x_axis == "minutes" else e["epoch"] for e in valid]
        style = {"marker": ".", **(styles or {}).get(run_dir.name, {})}
        ax.plot(xs, [e[key] for e in valid], label=run_dir.name, **style)
        tests = [e for e in events if e["event"] == "test" and key in e]
        if tests:
            ax.axhline(tests[-1][key], linestyle=":", linewidth=1, color=ax.lines[-1].get_color())
    ax.set_xlabel("training time (minutes, incl. validation)" if x_axis == "minutes" else "epoch")
    ax.set_ylabel(f"valid {' / '.join(sorted(names))} (dotted: final test)")
    ax.set_title(title or "validation curve")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, out)


class ProjectionPanel(NamedTuple):
    """One panel of :func:`plot_projections`.

    Attributes:
        title: the panel's title.
        points: ``(N, 3)`` projected rows.
        labels: ``(N,)`` int label of each row (index into the shared label names, -1 unknown), or
            ``None`` to draw every row in one colour.
        explained: ``(3,)`` fraction of the variance along each axis (shown in the axis labels).
    """

    title: str
    points: torch.Tensor
    labels: torch.Tensor | None
    explained: torch.Tensor


OTHER_COLOR = "0.75"  # grey: rows outside the most frequent labels


def _top_labels(panels: list[ProjectionPanel], num_names: int, top: int) -> list[int]:
    """The ``top`` most frequent labels over all panels, most frequent first (ties: lower id)."""
    counts = torch.zeros(num_names, dtype=torch.long)
    for panel in panels:
        if panel.labels is not None:
            known = panel.labels[panel.labels >= 0]
            counts += torch.bincount(known, minlength=num_names)[:num_names]
    order = sorted(range(num_names), key=lambda k: (-int(counts[k]), k))
    return [k for k in order[:top] if counts[k] > 0]


def _subsample(n: int, max_points: int | None, seed: int) -> torch.Tensor:
    """``(min(n, max_points),)`` row indices, a seeded uniform sample (all rows, in order, when
    ``max_points`` is None or at least ``n``)."""
    if max_points is None or max_points >= n:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:max_points].sort().values


def _slots(labels: torch.Tensor, top_ids: list[int], num_names: int) -> torch.Tensor:
    """``(N,)`` position of each row's label in ``top_ids``; -1 for an unknown or rarer label."""
    slot = torch.full((num_names,), -1, dtype=torch.long)
    slot[torch.tensor(top_ids, dtype=torch.long)] = torch.arange(len(top_ids))
    return torch.where(labels >= 0, slot[labels.clamp(min=0)], -1)


def _draw_panel(
    ax: Axes3D,
    panel: ProjectionPanel,
    slots: torch.Tensor,
    colors: list[tuple[float, float, float]],
    marker_size: float,
) -> None:
    """Scatter ``panel.points`` with row ``k`` in ``colors[slots[k]]`` (slot -1: grey ``other``,
    fainter), in one call so that the points are drawn by depth, not by label.

    Args:
        slots: ``(N,)`` colour slot of each row, -1 for ``other``.
    """
    points = panel.points.double().numpy()  # (N, 3)
    rgba = [to_rgba(OTHER_COLOR, 0.35)] + [to_rgba(c, 0.8) for c in colors]  # slot + 1 -> colour
    x, y, z = points.T
    ax.scatter(x, y, z, s=marker_size, c=[rgba[k + 1] for k in slots.tolist()], linewidths=0)
    for axis, set_label in enumerate((ax.set_xlabel, ax.set_ylabel, ax.set_zlabel)):
        set_label(f"PC{axis + 1} ({100 * float(panel.explained[axis]):.1f}%)", fontsize=8)
    ax.tick_params(labelsize=6)
    ax.set_title(panel.title, fontsize=10)


def plot_projections(
    panels: list[ProjectionPanel],
    label_names: list[str],
    path: Path,
    *,
    top: int = 8,
    max_points: int | None = None,
    seed: int = 0,
    title: str = "",
) -> Path:
    """3-D scatter plots side by side, one per panel, with one legend shared by all panels.

    The ``top`` most frequent labels (counted over all panels) get the ``tab10`` colours, most
    frequent first; every other row (unknown label or a rarer one) is grey ``other``. Without
    labels all rows share one colour and there is no legend. ``max_points`` draws a seeded sample
    of each panel's rows (the same rows in panels of equal length).

    Raises:
        UserError: no panels, or a panel whose points are not ``(N, 3)`` or whose labels do not
            match its rows or the names.
    """
    if not panels:
        raise UserError("nothing to plot: no panels")
    for panel in panels:
        n = panel.points.shape[0]
        if panel.points.dim() != 2 or panel.points.shape[1] != 3:
            raise UserError(f"panel {panel.title!r}: points must be (N, 3)")
        if panel.labels is not None and (
            panel.labels.shape != (n,) or (n > 0 and int(panel.labels.max()) >= len(label_names))
        ):
            raise UserError(f"panel {panel.title!r}: labels must be (N,) ids into the label names")
    top_ids = _top_labels(panels, len(label_names), min(top, 10))
    palette = list(colormaps["tab10"].colors)  # type: ignore[attr-defined]
    colors = palette[: len(top_ids)] if top_ids else palette[:1]
    names = [label_names[k] for k in top_ids]
    labelled = any(p.labels is not None for p in panels)
    fig = Figure(figsize=(5.0 * len(panels), 5.0))
    for i, panel in enumerate(panels):
        rows = _subsample(panel.points.shape[0], max_points, seed)  # (n,)
        if panel.labels is None:
            slots = torch.full((len(rows),), 0 if not labelled else -1, dtype=torch.long)
        else:
            slots = _slots(panel.labels[rows], top_ids, len(label_names))
        ax = cast(Axes3D, fig.add_subplot(1, len(panels), i + 1, projection="3d"))
        shown = ProjectionPanel(panel.title, panel.points[rows], None, panel.explained)
        _draw_panel(ax, shown, slots, colors, 4.0 if len(rows) > 2000 else 8.0)
    if labelled:
        handles = [
            Line2D([], [], linestyle="", marker="o", markersize=6, color=color, label=name)
            for name, color in [*zip(names, colors, strict=False), ("other", OTHER_COLOR)]
        ]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 9), frameon=False)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.0, right=0.94, bottom=0.1, top=0.88 if title else 0.94, wspace=0.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight", pad_inches=0.25)
    return path
