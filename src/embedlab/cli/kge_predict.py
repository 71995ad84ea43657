"""What ``embedlab kge predict`` prints and writes (the command's options live in
:mod:`embedlab.cli.kge`; the predictions in :mod:`embedlab.kge.predict`)."""

from __future__ import annotations

from pathlib import Path

import typer

from embedlab.errors import UserError
from embedlab.kge.predict import UNKNOWN, FilterKnown, KgePredictor, RemovedAnswer
from embedlab.kge.query_file import read_queries, write_answers

MAX_NAMED = 20  # removed answers named on the summary line of one query


def predict_command(
    run_dir: Path,
    *,
    relation: str | None,
    head: str | None,
    tail: str | None,
    top_k: int,
    filter_known: FilterKnown,
    input_file: Path | None,
    output: Path | None,
) -> None:
    """One query from ``--head/--tail/--relation``, or a batch from ``--input`` to ``--output``.

    Raises:
        UserError: a mix of the two forms, a missing part of either, unknown labels.
    """
    if input_file is not None:
        if head is not None or tail is not None or relation is not None:
            raise UserError("give either --input (a query file) or --head/--tail and --relation")
        if output is None:
            raise UserError("--input needs --output, the file to write the answers to")
        _batch(run_dir, input_file, output, top_k, filter_known)
        return
    if output is not None:
        raise UserError("--output is for --input batches; a single query prints its answers")
    if (head is None) == (tail is None):
        raise UserError("give exactly one of --head (predict tails) or --tail (predict heads)")
    if relation is None:
        raise UserError("give --relation with --head or --tail")
    predictor = KgePredictor.from_run(run_dir)
    query = (head, relation, UNKNOWN) if head is not None else (UNKNOWN, relation, tail)
    predictions = predictor.predict([query], top_k, filter_known)
    for a in predictions:
        typer.echo(f"{a.rank:3d}  {a.entity}\t{a.score:.4f}")
    if predictions.filtered:
        typer.echo(removed_line(predictions.removed, predictions.filtered))


def removed_line(removed: list[RemovedAnswer], splits: tuple[str, ...]) -> str:
    """``removed 3 known answers (train): X, Y, Z`` (best score first; each answer's split named
    when several splits are filtered; at most :data:`MAX_NAMED` names)."""
    noun = "answer" if len(removed) == 1 else "answers"
    line = f"removed {len(removed)} known {noun} ({', '.join(splits)})"
    if not removed:
        return line
    several = len(splits) > 1
    names = [f"{r.entity} ({r.split})" if several else r.entity for r in removed[:MAX_NAMED]]
    more = f", and {len(removed) - MAX_NAMED} more" if len(removed) > MAX_NAMED else ""
    return f"{line}: {', '.join(names)}{more}"


def _batch(
    run_dir: Path, input_file: Path, output: Path, top_k: int, filter_known: FilterKnown
) -> None:
    if not output.parent.is_dir():
        raise UserError(f"--output {output}: directory {output.parent} does not exist")
    predictor = KgePredictor.from_run(run_dir)
    queries = read_queries(input_file, predictor)
    predictions = predictor.predict(queries, top_k, filter_known)
    write_answers(output, predictions)
    typer.echo(f"{len(queries)} queries, {len(predictions)} answers: wrote {output}")
    if predictions.filtered:
        n = len(predictions.removed)
        with_any = len({r.query for r in predictions.removed})
        typer.echo(
            f"removed {n} known answers ({', '.join(predictions.filtered)}) "
            f"from {with_any} of the queries"
        )
