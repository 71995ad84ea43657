"""Word-level language-model corpora (Penn Treebank) as int64 token streams.

Format (Mikolov's PTB, as Zaremba et al. 2014 and PyTorch's ``word_language_model`` read it):
one sentence per line, tokens separated by whitespace; every line, blank ones included, ends with
the token ``<eos>``. The vocabulary is the training words plus ``<eos>``, ids in order of first
appearance in the training file; a word of ``valid``/``test`` missing from it is an error (PTB's
Mikolov version maps rare words to ``<unk>`` beforehand, so it has none).

A directory holding ``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt`` (or ``train.txt``,
``valid.txt``, ``test.txt``) is a custom corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from embedlab.datasets.registry import REGISTRY
from embedlab.datasets.resolve import resolve_dataset_dir
from embedlab.errors import DatasetError, UserError

EOS = "<eos>"
SPLITS = ("train", "valid", "test")
FILE_PATTERNS = ("ptb.{split}.txt", "{split}.txt")
"""File names of a corpus directory, tried in this order (the first complete set is used)."""


@dataclass(frozen=True)
class TokenCorpus:
    """A tokenized corpus.

    Attributes:
        name: registry name or directory.
        vocab: word of each id (``vocab[i]``); the training words and ``<eos>``.
        word_to_id: the inverse of ``vocab``.
        splits: ``"train"|"valid"|"test"`` -> ``(num_tokens,)`` int64 ids, ``<eos>`` included.
        source_dir: the directory the files were read from.
    """

    name: str
    vocab: list[str]
    word_to_id: dict[str, int]
    splits: dict[str, torch.Tensor]
    source_dir: Path

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def num_tokens(self, split: str) -> int:
        return int(self.splits[split].numel())


def corpus_files(folder: Path) -> dict[str, Path]:
    """``split -> file`` of a corpus directory (see :data:`FILE_PATTERNS`).

    Raises:
        DatasetError: no complete set of the three files.
    """
    for pattern in FILE_PATTERNS:
        files = {s: folder / pattern.format(split=s) for s in SPLITS}
        if all(f.is_file() for f in files.values()):
            return files
    expected = " or ".join(", ".join(p.format(split=s) for s in SPLITS) for p in FILE_PATTERNS)
    raise DatasetError(f"{folder}: not a token corpus; expected {expected}")


def read_lines(path: Path) -> list[list[str]]:
    """The whitespace-separated words of every line of ``path`` (``<eos>`` not yet appended).

    Raises:
        DatasetError: the file is not UTF-8 (the message names file and line).
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason})") from None
    lines = text.split("\n")  # "\n" only: line numbers match editors and `wc -l`
    if lines[-1] == "":
        lines.pop()  # the file's final newline ends the last line, it starts none
    return [line.split() for line in lines]


def _encode(path: Path, lines: list[list[str]], word_to_id: dict[str, int]) -> torch.Tensor:
    """``(num_tokens,)`` int64 ids of ``lines`` with ``<eos>`` after each line.

    Raises:
        DatasetError: a word missing from ``word_to_id`` (file and line named).
    """
    eos = word_to_id[EOS]
    ids: list[int] = []
    for lineno, words in enumerate(lines, start=1):
        try:
            ids.extend([word_to_id[w] for w in words])
        except KeyError as exc:
            raise DatasetError(
                f"{path}:{lineno}: word {exc.args[0]!r} does not occur in the training file; "
                "map rare words to <unk> in every split (as PTB does)"
            ) from None
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.int64)


def build_vocab(lines: list[list[str]]) -> dict[str, int]:
    """Word -> id in order of first appearance, ``<eos>`` at the end of the first line."""
    word_to_id: dict[str, int] = {}
    for words in lines:
        for w in words:
            word_to_id.setdefault(w, len(word_to_id))
        word_to_id.setdefault(EOS, len(word_to_id))
    return word_to_id


def load_corpus(name_or_dir: str) -> TokenCorpus:
    """Resolve (:func:`resolve_dataset_dir`) and read a token corpus.

    Args:
        name_or_dir: ``ptb`` or a directory (see the module docstring).

    Raises:
        UserError: unknown name, or a registered dataset of another kind.
        DatasetError: missing files, an empty training file, non-UTF-8 bytes, or a valid/test word
            outside the training vocabulary (file and line named).
    """
    spec = REGISTRY.get(name_or_dir)
    if spec is not None and spec.kind != "tokens":
        raise UserError(f"dataset {name_or_dir!r} is of kind {spec.kind!r}, not a token corpus")
    folder = Path(resolve_dataset_dir(name_or_dir))
    files = corpus_files(folder)
    train_lines = read_lines(files["train"])
    if not train_lines:
        raise DatasetError(f"{files['train']}: empty training file")
    word_to_id = build_vocab(train_lines)
    splits = {"train": _encode(files["train"], train_lines, word_to_id)}
    for split in ("valid", "test"):
        splits[split] = _encode(files[split], read_lines(files[split]), word_to_id)
    return TokenCorpus(
        name=name_or_dir,
        vocab=list(word_to_id),
        word_to_id=word_to_id,
        splits=splits,
        source_dir=folder,
    )
