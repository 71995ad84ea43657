"""``embedlab datasets list | info NAME``."""

from __future__ import annotations

import typer

from embedlab.datasets.kg import load_kg
from embedlab.datasets.registry import REGISTRY

app = typer.Typer(help="List registered datasets and show their statistics.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """List registered dataset names with a one-line description."""
    for name, spec in REGISTRY.items():
        where = "shipped" if spec.packaged else "download"
        typer.echo(f"{name:12s} {spec.kind:8s} {where:9s} {spec.description}")


@app.command()
def info(name: str = typer.Argument(..., help="registry name or a directory")) -> None:
    """Resolve a dataset (downloading it if needed) and print its statistics."""
    ds = load_kg(name)
    spec = REGISTRY.get(name)
    if spec is not None:
        typer.echo(f"{spec.name}: {spec.description}\n  source: {spec.citation}")
    typer.echo(f"  entities: {ds.num_entities:,}  relations: {ds.num_relations:,}")
    for split, triples in ds.splits.items():
        line = f"  {split:5s}: {len(triples):,} triples"
        if split != "train":
            line += f" ({ds.unseen_entity_triples(split):,} with an entity unseen in training)"
        typer.echo(line)
