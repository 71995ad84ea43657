"""``embedlab datasets list | info NAME``."""

from __future__ import annotations

from pathlib import Path

import typer

from embedlab.datasets.kg import KgDataset, load_kg
from embedlab.datasets.parallel import load_parallel
from embedlab.datasets.planetoid import load_planetoid
from embedlab.datasets.ratings import CUSTOM_FILES, RatingDataset, load_ratings
from embedlab.datasets.registry import REGISTRY
from embedlab.datasets.resolve import resolve_dataset_dir
from embedlab.datasets.tokens import load_corpus

app = typer.Typer(help="List registered datasets and show their statistics.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """List registered dataset names with a one-line description."""
    for name, spec in REGISTRY.items():
        where = "shipped" if spec.packaged else "download"
        typer.echo(f"{name:12s} {spec.kind:8s} {where:9s} {spec.description}")


@app.command()
def info(
    name: str = typer.Argument(..., help="registry name or a directory"),
    protocol: str | None = typer.Option(
        None, help="split protocol of a ratings dataset (default: the dataset's first)"
    ),
) -> None:
    """Resolve a dataset (downloading it if needed) and print its statistics."""
    spec = REGISTRY.get(name)
    if spec is not None:
        kind = spec.kind
    else:  # a custom directory: ratings (train.tsv, test.tsv), a graph (ind.*.graph), or a KG
        folder = Path(name).expanduser()
        kind = "ratings" if all((folder / f).is_file() for f in CUSTOM_FILES) else "kg"
        kind = "graph" if any(folder.glob("ind.*.graph")) else kind
    if kind == "ratings":
        lines = _ratings_lines(load_ratings(name, protocol=protocol))
    elif kind == "kg":
        lines = _kg_lines(load_kg(name))
    elif kind == "tokens":
        corpus = load_corpus(name)
        lines = [f"  vocabulary: {corpus.vocab_size:,} words (<eos> included)"]
        lines += [f"  {split:5s}: {len(ids):,} tokens" for split, ids in corpus.splits.items()]
    elif kind == "parallel":  # Multi30K's split prefixes and languages
        prefixes = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
        splits = load_parallel(name, source="en", target="de", prefixes=prefixes)
        lines = [f"  {split:5s}: {len(pairs):,} sentence pairs" for split, pairs in splits.items()]
    elif kind == "graph":
        graph = load_planetoid(name)
        lines = [
            f"  nodes: {graph.num_nodes:,}  features: {graph.num_features:,}  classes: "
            f"{graph.num_classes}  undirected edges: {graph.edges.shape[1]:,}"
        ]
        lines += [f"  {split:5s}: {len(ids):,} nodes" for split, ids in graph.splits.items()]
    else:  # side information for another dataset: where its files are
        files = ", ".join(spec.files) if spec is not None else ""
        lines = [f"  {kind} data: {files} in {resolve_dataset_dir(name)}"]
    if spec is not None:
        typer.echo(f"{spec.name}: {spec.description}\n  source: {spec.citation}")
    typer.echo("\n".join(lines))


def _kg_lines(ds: KgDataset) -> list[str]:
    lines = [f"  entities: {ds.num_entities:,}  relations: {ds.num_relations:,}"]
    for split, triples in ds.splits.items():
        line = f"  {split:5s}: {len(triples):,} triples"
        if split != "train":
            line += f" ({ds.unseen_entity_triples(split):,} with an entity unseen in training)"
        lines.append(line)
    return lines


def _ratings_lines(ds: RatingDataset) -> list[str]:
    low, high = ds.rating_scale
    lines = [
        f"  protocol: {ds.protocol}  users: {ds.num_users:,}  items: {ds.num_items:,}  "
        f"ratings: {low:g}-{high:g}"
    ]
    for split, part in ds.splits.items():
        users, items = part.users.unique().numel(), part.items.unique().numel()
        line = f"  {split:5s}: {len(part):,} ratings by {users:,} users of {items:,} items"
        if split != "train":
            line += f" ({ds.unseen_ratings(split):,} with a user or item unseen in training)"
        lines.append(line)
    return lines
