"""Reader for tab-separated triple files (``head<TAB>relation<TAB>tail``, one per line)."""

from __future__ import annotations

from pathlib import Path

from embedlab.datasets.lines import split_lines
from embedlab.errors import DatasetError


def read_triples(path: Path) -> list[tuple[str, str, str]]:
    """Read a triple file; blank lines are skipped.

    Returns:
        list of ``(head, relation, tail)`` label triples, in file order.

    Raises:
        DatasetError: missing file, empty file, undecodable bytes (not UTF-8) or a line without
            exactly three tab-separated fields; the message names the file and line number.
    """
    if not path.is_file():
        raise DatasetError(
            f"{path}: file not found (a KG dataset needs train.txt, valid.txt, test.txt)"
        )
    triples: list[tuple[str, str, str]] = []
    for lineno, parts in split_lines(path, sep="\t", fields=3, columns="head, relation, tail"):
        if not all(parts):
            raise DatasetError(f"{path}:{lineno}: empty head, relation or tail: {parts!r}")
        triples.append((parts[0], parts[1], parts[2]))
    if not triples:
        raise DatasetError(f"{path}: file is empty (no triples)")
    return triples
