"""``embedlab gcn train | evaluate``: two-layer GCN node classification on a Planetoid graph
(Kipf & Welling 2017), with a learned node table (plain or KD codes, paper 003 eq. 2-3)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer

from embedlab.config.io import build_typed_config
from embedlab.errors import UserError
from embedlab.gcn.config import GcnConfig
from embedlab.gcn.run import load_run, train_gcn
from embedlab.gcn.task import GcnTask

app = typer.Typer(
    help="Two-layer GCN node classification (Cora) with bag-of-words features, a learned node "
    "table (lookup or KD codes), or both.",
    no_args_is_help=True,
)


def _line(split: str, m: dict) -> str:
    return f"{split}: accuracy {m['accuracy']:.4f}  (loss {m['loss']:.4f} nats, {m['nodes']} nodes)"


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="run directory (created; resumed if it exists)"),
    config: Path | None = typer.Option(None, "--config", help="YAML config file"),
    dataset: str | None = typer.Option(
        None, help="cora, or a directory with one set of Planetoid files ind.PREFIX.*"
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="override a config key, repeatable: --set model.features=embedding "
        "--set node_embedding.kind=kd --set node_embedding.kd.K=16",
    ),
    overwrite: bool = typer.Option(False, help="delete an existing run directory first"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train a two-layer GCN full batch and report the accuracy of its best (lowest valid
    loss) epoch on the valid and test nodes.

    model.features chooses the node matrix X: bag_of_words (Kipf & Welling's features; 81.5%
    test accuracy published on Cora), embedding (a learned node table, configured under
    node_embedding: lookup or KD codes) or both. metrics.json holds test.accuracy and, for a
    KD table, its compression ratio. Re-running on an existing --out with the same config
    resumes from checkpoints/last.
    """
    overrides = [f"dataset={dataset}"] if dataset else []
    cfg = build_typed_config(GcnConfig, path=config, overrides=overrides + list(set_))
    metrics = train_gcn(cfg, out, overwrite=overwrite, progress=progress)
    typer.echo(_line("valid", metrics["valid"]))
    typer.echo(_line("test", metrics["test"]))
    compression = metrics["compression"]
    ratio = f", node table compressed {compression['ratio']:.1f}x" if compression else ""
    timing = metrics["timing"]
    typer.echo(
        f"{timing['epochs']} epochs (best {metrics['best_epoch']}), {timing['stop_reason']}"
        f"{ratio}; run directory: {out}"
    )


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="a GCN run directory"),
    split: str = typer.Option("test", help="valid | test"),
) -> None:
    """Accuracy and loss of a run's best checkpoint on one split; last line: JSON."""
    if split not in ("valid", "test"):
        raise UserError(f"--split must be valid or test, got {split!r}")
    config, graph, model = load_run(run_dir)
    task = GcnTask(model=model, graph=graph, config=config, device=torch.device("cpu"))
    metrics = task.evaluate(split)
    typer.echo(_line(split, metrics))
    typer.echo(json.dumps(metrics))
