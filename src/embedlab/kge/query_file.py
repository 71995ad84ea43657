"""Batch prediction files: queries in, top-k answers out, both tab-separated.

Input (``embedlab kge predict RUN --input FILE``), one query per line, blank lines skipped::

    brazil<TAB>embassy<TAB>?        tails of (brazil, embassy, ?)
    ?<TAB>embassy<TAB>usa           heads of (?, embassy, usa)

Output: a header line ``head relation tail rank answer score``, then one line per answer (the
query's three fields as given, ``?`` included), queries in file order, best answer first.
"""

from __future__ import annotations

from pathlib import Path

from embedlab.datasets.lines import split_lines
from embedlab.errors import UserError
from embedlab.kge.predict import UNKNOWN, KgePredictor, Predictions

HEADER = ("head", "relation", "tail", "rank", "answer", "score")


def read_queries(path: Path, predictor: KgePredictor) -> list[tuple[str, str, str]]:
    """The queries of ``path``, checked against the run's labels.

    Raises:
        UserError: a missing or empty file; a line without three tab-separated fields, without
            exactly one ``?`` in head or tail, or with a label the dataset does not have (the
            message names the file and line).
    """
    if not path.is_file():
        raise UserError(f"{path}: query file not found")
    queries: list[tuple[str, str, str]] = []
    columns = "head, relation, tail with '?' on the side to predict"
    for lineno, (h, r, t) in split_lines(path, sep="\t", fields=3, columns=columns):
        if (h == UNKNOWN) == (t == UNKNOWN):
            raise UserError(
                f"{path}:{lineno}: put '?' in exactly one of head and tail: {h}\\t{r}\\t{t}"
            )
        try:
            predictor.relations.id(r)
            predictor.entities.id(t if h == UNKNOWN else h)
        except UserError as exc:
            raise UserError(f"{path}:{lineno}: {exc}") from None
        queries.append((h, r, t))
    if not queries:
        raise UserError(f"{path}: no queries (expected head<TAB>relation<TAB>? lines)")
    return queries


def write_answers(path: Path, predictions: Predictions) -> None:
    """Write the answers as the module docstring describes (scores with 7 significant digits,
    what float32 holds)."""
    lines = ["\t".join(HEADER)]
    for a in predictions:
        lines.append(f"{a.head}\t{a.relation}\t{a.tail}\t{a.rank}\t{a.entity}\t{a.score:.7g}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
