"""Line-oriented text files: every reader's one place for ``file:line`` errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from embedlab.errors import DatasetError


def split_lines(
    path: Path, *, sep: str, fields: int, columns: str = "", encoding: str = "utf-8"
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, fields)`` for every non-blank line, each field stripped.

    Args:
        sep: the field separator (``"\\t"``, ``"::"``, ...); fields: how many each line must have;
        columns: their names, for the error message (``"head, relation, tail"``).

    Raises:
        DatasetError: a line that does not decode, or whose field count differs; the message
            names the file and line.
    """
    sep_name = "tab" if sep == "\t" else repr(sep)
    names = f" ({columns})" if columns else ""
    for lineno, line_bytes in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = line_bytes.decode(encoding)
        except UnicodeDecodeError as exc:
            label = "UTF-8" if encoding.lower().replace("_", "-") == "utf-8" else encoding
            raise DatasetError(f"{path}:{lineno}: not valid {label} ({exc.reason})") from None
        if not line.strip():
            continue
        parts = [p.strip() for p in line.rstrip("\r").split(sep)]
        if len(parts) != fields:
            raise DatasetError(
                f"{path}:{lineno}: expected {fields} {sep_name}-separated fields{names}, "
                f"found {len(parts)}: {line[:80]!r}"
            )
        yield lineno, parts
