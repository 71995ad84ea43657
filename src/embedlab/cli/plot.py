"""``embedlab plot trace RUN_DIR... --out FILE.png``; ``embedlab plot embeddings RUN_DIR...``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import torch
import typer

from embedlab.errors import UserError
from embedlab.plots import ProjectionPanel, plot_projections, plot_trace
from embedlab.recsys.config import MfConfig
from embedlab.recsys.projection import (
    load_table,
    merge_label_names,
    pca_3d,
    regularizer_title,
    table_labels,
)

app = typer.Typer(help="Plots from run directories (PNG).", no_args_is_help=True)


class XAxis(StrEnum):
    minutes = "minutes"
    epoch = "epoch"


@app.command()
def trace(
    run_dirs: list[Path] = typer.Argument(..., help="one or more run directories"),
    out: Path = typer.Option(..., "--out", help="output PNG"),
    metric: str | None = typer.Option(
        None,
        help="validation metric to plot (default: the run's selection metric: KGE mrr, "
        "MF rmse, LM loss; e.g. --metric perplexity)",
    ),
    title: str = typer.Option("", help="plot title"),
    x_axis: XAxis = typer.Option(
        XAxis.minutes,
        "--x-axis",
        help="minutes of training (incl. validation) or epoch (for runs that trained at "
        "different speeds)",
    ),
) -> None:
    """Validation metric against training time (or epoch), read from each run's trace.jsonl."""
    written = plot_trace(run_dirs, out, metric=metric, title=title, x_axis=x_axis.value)
    typer.echo(f"wrote {written}")


class TableChoice(StrEnum):
    user = "user"
    item = "item"


class ColorBy(StrEnum):
    auto = "auto"
    genre = "genre"
    none = "none"


_Labels = tuple[torch.Tensor, list[str]]


def _run_labels(
    run_dir: Path,
    config: MfConfig,
    table: TableChoice,
    color_by: ColorBy,
    cache: dict[str, _Labels | None],
) -> _Labels | None:
    """A run's row labels, cached per dataset config; ``None`` where rows are not coloured.

    ``auto`` falls back to no colour (with a note) where the dataset has no labels.
    """
    if color_by is ColorBy.none or (color_by is ColorBy.auto and table is TableChoice.user):
        return None
    key = config.model_dump_json(include={"seed", "dataset", "data"})
    if key not in cache:
        try:
            cache[key] = table_labels(config, table.value)
        except UserError as exc:
            if color_by is ColorBy.genre:
                raise UserError(f"{run_dir}: {exc}") from None
            typer.echo(f"note: {run_dir}: rows not coloured ({exc})", err=True)
            cache[key] = None
    return cache[key]


@app.command()
def embeddings(
    run_dirs: list[Path] = typer.Argument(..., help="one or more MF run directories (mf train)"),
    out: Path = typer.Option(..., "--out", help="output PNG"),
    table: TableChoice = typer.Option(TableChoice.item, help="which embedding table"),
    title_from_config: bool = typer.Option(
        False,
        "--title-from-config",
        help="title each panel by the table's regularizer read from the run's config.yaml "
        "('no SSE', 'SSE-Graph (p=…, ρ=…)', 'SSE-SE (p=…)', '+ dropout …') instead of the "
        "directory name",
    ),
    max_points: int | None = typer.Option(
        None, min=1, help="draw a seeded random sample of this many rows per panel"
    ),
    color_by: ColorBy = typer.Option(
        ColorBy.auto,
        help="genre: colour items by their first listed genre (ml-1m, ml-100k); auto: genre "
        "for items of a dataset with genres, else one colour; none: one colour",
    ),
    top: int = typer.Option(8, min=1, max=10, help="labels coloured; the rest are grey 'other'"),
    seed: int = typer.Option(0, help="seed of the --max-points sample"),
    title: str = typer.Option("", help="figure title"),
) -> None:
    """3-D PCA projections of trained embedding tables, one panel per run, side by side.

    Regenerates the SSE paper's Figure 1 (Figure 3 in its appendix;
    Wu et al., NeurIPS 2019): "Projecting 50-dimensional embeddings ...
    without SSE (Left), and with SSE-Graph (Center), SSE-SE (Right)
    into 3D space using PCA". One run per regularizer, e.g.
    embedlab plot embeddings runs/none runs/graph runs/se --out fig1.png

    Each run's table (checkpoints/best, else last) is centred and projected
    on its own first three principal components; each axis label gives the
    percentage of the variance that component explains.

    Items are coloured by their first listed genre (ml-1m, ml-100k): the
    most frequent genres over all panels in tab10 colours, the rest grey,
    one legend for all panels.
    """
    panels: list[ProjectionPanel] = []
    labelled: list[_Labels | None] = []
    cache: dict[str, _Labels | None] = {}
    for run_dir in run_dirs:
        weights, config = load_table(run_dir, table.value)  # (N, d)
        entry = _run_labels(run_dir, config, table, color_by, cache)
        if entry is not None and entry[0].shape[0] != weights.shape[0]:
            raise UserError(
                f"{run_dir}: the checkpoint has {weights.shape[0]} {table.value} rows but its "
                f"dataset has {entry[0].shape[0]}; was the dataset changed since training?"
            )
        labelled.append(entry)
        points, explained = pca_3d(weights)  # (N, 3), (3,)
        name = regularizer_title(config, table.value) if title_from_config else run_dir.name
        panels.append(ProjectionPanel(name, points, None, explained))
    merged, names = merge_label_names(labelled)
    panels = [p._replace(labels=labels) for p, labels in zip(panels, merged, strict=True)]
    path = plot_projections(
        panels, names, out, top=top, max_points=max_points, seed=seed, title=title
    )
    typer.echo(f"wrote {path}")
