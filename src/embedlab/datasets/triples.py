"""Reader for tab-separated triple files (``head<TAB>relation<TAB>tail``, one per line)."""

from __future__ import annotations

from pathlib import Path

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
    raw = path.read_bytes()
    triples: list[tuple[str, str, str]] = []
    for lineno, line_bytes in enumerate(raw.splitlines(), start=1):
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason})") from None
        if not line.strip():
            continue
        parts = line.rstrip("\r").split("\t")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise DatasetError(
                f"{path}:{lineno}: expected 3 tab-separated fields (head, relation, tail), "
                f"found {len(parts)}: {line[:80]!r}"
            )
        triples.append((parts[0].strip(), parts[1].strip(), parts[2].strip()))
    if not triples:
        raise DatasetError(f"{path}: file is empty (no triples)")
    return triples
