"""``embedlab kge train | evaluate | export | predict``."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
import typer

from embedlab.cli.kge_predict import predict_command
from embedlab.distributed import is_main_process
from embedlab.embeddings.kd import KdEmbedding
from embedlab.embeddings.kd_compact import export_kd, save_compact
from embedlab.embeddings.kd_onnx import export_onnx
from embedlab.errors import UserError
from embedlab.evaluation.breakdown import relation_table
from embedlab.kge.config import build_config
from embedlab.kge.run import evaluate_splits, load_run, train_run

app = typer.Typer(help="Knowledge-graph link prediction.", no_args_is_help=True)


def _print_metrics(metrics: dict, split: str) -> None:
    m = metrics[split]
    typer.echo(
        f"{split}: MRR {m['mrr']:.4f}  MR {m['mr']:.1f}  Hits@1 {m['hits@1']:.4f}  "
        f"Hits@3 {m['hits@3']:.4f}  Hits@10 {m['hits@10']:.4f}  "
        f"({m['num_queries']} queries, filtered, {m['seconds']:.2f} s)"
    )


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="run directory (created; resumed if it exists)"),
    config: Path | None = typer.Option(None, "--config", help="YAML config file"),
    dataset: str | None = typer.Option(None, help="dataset name or directory"),
    model: str | None = typer.Option(
        None, help="distmult | complex | transe | rotate | rescal | tucker"
    ),
    loss: str | None = typer.Option(None, help="sce | sce_ls | sce_bc | ns | ns_freq | sans"),
    set_: list[str] = typer.Option(
        [], "--set", help="override a config key, repeatable: --set train.lr=0.1 --set model.dim=64"
    ),
    init_from: Path | None = typer.Option(
        None,
        "--init-from",
        help="initialize the embeddings from this run directory's best checkpoint "
        "(pre-training, paper 002 table 3; any loss, same model and dataset)",
    ),
    overwrite: bool = typer.Option(False, help="delete an existing run directory first"),
    progress: bool = typer.Option(True, help="show a progress bar per epoch"),
) -> None:
    """Train a KGE model and evaluate its best checkpoint on valid and test.

    Training type (1vsAll, KvsAll, negative_sampling) and loss (sce, sce_ls, sce_bc, ns, ns_freq,
    sans) come from the config. Re-running on an existing --out with the same config resumes from
    checkpoints/last.
    """
    if init_from is not None and not (init_from / "config.yaml").is_file():
        raise UserError(f"--init-from {init_from} is not a run directory (no config.yaml)")
    overrides = []
    if init_from is not None:
        overrides.append(f"train.init_from={init_from.resolve()}")
    for key, value in (("dataset", dataset), ("model.name", model), ("loss.name", loss)):
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = build_config(path=config, overrides=overrides + list(set_))
    metrics = train_run(cfg, out, overwrite=overwrite, progress=progress)
    if not is_main_process():  # torchrun: rank 0 reports
        return
    _print_metrics(metrics, "valid")
    _print_metrics(metrics, "test")
    typer.echo(f"run directory: {out}")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="a run directory"),
    split: str = typer.Option("test", help="valid | test"),
    by: str | None = typer.Option(
        None, "--by", help="relation: a table of MRR and Hits@10 per relation, head and tail"
    ),
) -> None:
    """Filtered MRR / MR / Hits@k of a run's best checkpoint on one split (both directions).

    Prints one summary line, then the metrics as one JSON line (with ``raw``, the unfiltered
    metrics, and ``by_relation``); with ``--by relation`` a per-relation table instead of JSON.
    """
    if split not in ("valid", "test"):
        raise UserError(f"--split must be valid or test, got {split!r}")
    if by not in (None, "relation"):
        raise UserError(f"--by must be relation, got {by!r}")
    config, dataset, model = load_run(run_dir)
    metrics = evaluate_splits(config, dataset, model, (split,))
    _print_metrics(metrics, split)
    if by == "relation":
        title = f"{split} by relation (filtered, {config.eval.ties} ties; h: head, t: tail)"
        typer.echo(relation_table(metrics[split]["by_relation"], title=title))
        return
    typer.echo(json.dumps(metrics[split]))


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="a run directory"),
    out: Path = typer.Argument(..., help="output .npz file"),
) -> None:
    """Write entity/relation embeddings and their id maps to an .npz file.

    Arrays: entity_embeddings (N, d), relation_embeddings (R, d) (forward relations; the
    reciprocal ones are in reciprocal_relation_embeddings), entity_ids, relation_ids.
    """
    _, dataset, model = load_run(run_dir)
    with torch.no_grad():
        rel = model.relations.lookup_all().numpy()
        ent = model.entities.lookup_all().numpy()
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")  # what np.savez would write
    np.savez(
        out,
        entity_embeddings=ent,
        relation_embeddings=rel[: dataset.num_relations],
        reciprocal_relation_embeddings=rel[dataset.num_relations :],
        entity_ids=np.array(dataset.entity_ids),
        relation_ids=np.array(dataset.relation_ids),
    )
    typer.echo(f"wrote {out}")


class CodesFormat(StrEnum):
    """File formats of `export-codes`."""

    safetensors = "safetensors"
    onnx = "onnx"


@app.command("export-codes")
def export_codes(
    run_dir: Path = typer.Argument(..., help="a run directory whose entity table is KD codes"),
    out: Path = typer.Argument(..., help="output file (.safetensors or .onnx)"),
    fmt: CodesFormat = typer.Option(
        CodesFormat.safetensors, "--format", help="safetensors (embedlab) | onnx (any runtime)"
    ),
) -> None:
    """Write the entity table's KD codes: ``safetensors`` (codes ceil(log2 K) bits each, code
    embeddings, composition; load it with ``embedlab.embeddings.load_compact``) or ``onnx``
    (entity ids (batch,) int64 -> vectors (batch, d); needs the onnx extra)."""
    _, _, model = load_run(run_dir)
    if not isinstance(model.entities, KdEmbedding):
        raise UserError(f"{run_dir}: entity_embedding.kind is not kd; use `embedlab kge export`")
    if fmt is CodesFormat.onnx:
        export_onnx(export_kd(model.entities), out)
    else:
        save_compact(export_kd(model.entities), out)
    typer.echo(f"wrote {out} ({out.stat().st_size} bytes)")


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="a run directory"),
    relation: str | None = typer.Option(None, help="relation label"),
    head: str | None = typer.Option(None, help="head label: predict tails"),
    tail: str | None = typer.Option(None, help="tail label: predict heads"),
    top_k: int = typer.Option(10, min=1, help="number of answers per query"),
    filter_known: bool = typer.Option(
        True,
        "--filter-known/--no-filter-known",
        help="remove answers that make a known triple (of --filter-splits), and say which",
    ),
    filter_splits: str = typer.Option(
        "train", help="splits --filter-known removes: train, all, or a list like train,valid"
    ),
    input_file: Path | None = typer.Option(
        None, "--input", help="query file: head<TAB>relation<TAB>? or ?<TAB>relation<TAB>tail"
    ),
    output: Path | None = typer.Option(None, help="with --input: answers file (TSV) to write"),
) -> None:
    """Top-k tails for (HEAD, RELATION, ?) or heads for (?, RELATION, TAIL), by name; or a
    batch of such queries from --input, written to --output.

    Known answers (training triples by default) are removed and named; --no-filter-known ranks
    every entity.
    """
    splits = filter_splits.split(",") if "," in filter_splits else filter_splits
    predict_command(
        run_dir,
        relation=relation,
        head=head,
        tail=tail,
        top_k=top_k,
        filter_known=splits if filter_known else False,
        input_file=input_file,
        output=output,
    )
