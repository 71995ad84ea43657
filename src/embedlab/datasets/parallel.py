"""Sentence-aligned parallel corpora (Multi30K) as lists of raw (untokenized) sentences.

A split ``PREFIX`` of languages ``SRC``/``TGT`` is the pair of files ``PREFIX.SRC`` and
``PREFIX.TGT`` (each optionally gzipped: ``PREFIX.SRC.gz`` is tried first), one sentence a line,
line i of one translating line i of the other. Multi30K's raw files are of this form
(``train.en.gz``, ``val.de.gz``, ``test_2016_flickr.en.gz``); a directory holding such files is a
custom parallel corpus. Lines are kept as they are but for the final newline and a trailing
``\\r``; tokenization is the model's (SentencePiece).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from embedlab.datasets.registry import REGISTRY
from embedlab.datasets.resolve import resolve_dataset_dir
from embedlab.errors import DatasetError, UserError


@dataclass(frozen=True)
class ParallelSplit:
    """``source[i]`` translates to ``target[i]`` (raw sentences)."""

    source: list[str]
    target: list[str]

    def __len__(self) -> int:
        return len(self.source)


def split_file(folder: Path, prefix: str, lang: str) -> Path:
    """``folder/PREFIX.LANG.gz`` if it exists, else ``folder/PREFIX.LANG``.

    Raises:
        DatasetError: neither exists.
    """
    for name in (f"{prefix}.{lang}.gz", f"{prefix}.{lang}"):
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"{folder}: no {prefix}.{lang}.gz or {prefix}.{lang} (a parallel corpus)")


def read_sentences(path: Path) -> list[str]:
    """The lines of a (gzipped) UTF-8 text file, without line ends.

    Raises:
        DatasetError: bytes that are not UTF-8 (file and line named) or a broken gzip file.
    """
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable gzip file ({exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_split(folder: Path, prefix: str, source: str, target: str) -> ParallelSplit:
    """Both sides of one split.

    Raises:
        DatasetError: a missing file, or sides of different line counts.
    """
    src_path, tgt_path = split_file(folder, prefix, source), split_file(folder, prefix, target)
    src, tgt = read_sentences(src_path), read_sentences(tgt_path)
    if len(src) != len(tgt):
        raise DatasetError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: not sentence-aligned"
        )
    return ParallelSplit(source=src, target=tgt)


def load_parallel(
    name_or_dir: str, *, source: str, target: str, prefixes: dict[str, str]
) -> dict[str, ParallelSplit]:
    """Resolve a parallel corpus (:func:`resolve_dataset_dir`) and read ``prefixes``
    (``{"train": "train", "valid": "val", "test": "test_2016_flickr"}``).

    Raises:
        UserError: a registered dataset of another kind; DatasetError: see :func:`read_split`,
            or an empty training split.
    """
    spec = REGISTRY.get(name_or_dir)
    if spec is not None and spec.kind != "parallel":
        raise UserError(f"dataset {name_or_dir!r} is of kind {spec.kind!r}, not a parallel corpus")
    folder = Path(resolve_dataset_dir(name_or_dir))
    splits = {
        split: read_split(folder, prefix, source, target) for split, prefix in prefixes.items()
    }
    if "train" in splits and not len(splits["train"]):
        raise DatasetError(f"{folder}: the training split is empty")
    return splits
