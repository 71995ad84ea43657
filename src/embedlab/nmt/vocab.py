"""The joint SentencePiece BPE vocabulary of a run (Kudo & Richardson 2018; the SSE paper's
section 5.2 encodes WMT with SentencePiece BPE).

Trained on the training split of both languages and saved as ``RUN_DIR/spm.model``; a resumed
run, ``evaluate`` and ``translate`` read that file back, so the vocabulary never changes under a
checkpoint. Ids 0-3 are ``<pad> <unk> <s> </s>``.
"""

from __future__ import annotations

import importlib
import io
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch

from embedlab.embeddings.graph import RowGraph
from embedlab.errors import UserError
from embedlab.nmt.config import NmtDataConfig

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = (PAD, UNK, BOS, EOS)
VOCAB_FILE = "spm.model"
WORD_START = "\u2581"  # SentencePiece's word-boundary mark


def optional_module(name: str) -> ModuleType:
    """Import a package of the ``nmt`` extra, or say how to install it (the rest of embedlab
    works without it, so it is imported only when an NMT run needs it)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise UserError(
            f"embedlab nmt needs the package {name!r}: pip install 'embedlab[nmt]' "
            "(make venv installs it)"
        ) from None


class Vocabulary:
    """A SentencePiece model: ``encode(text) -> ids`` (no ``<s>``/``</s>``), ``decode(ids)``
    (detokenized text; special ids dropped)."""

    def __init__(self, *, model_proto: bytes) -> None:
        self.proto = model_proto
        self.sp = optional_module("sentencepiece").SentencePieceProcessor(model_proto=model_proto)

    def __len__(self) -> int:
        return int(self.sp.get_piece_size())

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self.sp.encode(list(texts), out_type=int)]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.sp.decode([i for i in ids if i not in SPECIALS]))

    def piece(self, index: int) -> str:
        return str(self.sp.id_to_piece(index))

    def save(self, path: Path) -> None:
        """Write the model atomically (a run killed while writing keeps no half file)."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.proto)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        if not path.is_file():
            raise UserError(f"{path.parent} has no {VOCAB_FILE} (not a trained NMT run)")
        return cls(model_proto=path.read_bytes())


def train_vocabulary(sentences: Sequence[str], config: NmtDataConfig) -> Vocabulary:
    """A BPE model of at most ``config.vocab_size`` pieces over ``sentences`` (both languages).

    ``hard_vocab_limit`` is off: a corpus too small for the size gets a smaller vocabulary
    rather than an error. Deterministic for the same sentences (one thread, no sampling).
    """
    writer = io.BytesIO()
    optional_module("sentencepiece").SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=writer,
        model_type="bpe",
        vocab_size=config.vocab_size,
        character_coverage=config.character_coverage,
        pad_id=PAD,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        hard_vocab_limit=False,
        input_sentence_size=0,
        num_threads=1,
        minloglevel=2,
    )
    return Vocabulary(model_proto=writer.getvalue())


def run_vocabulary(run_dir: Path, sentences: Sequence[str], config: NmtDataConfig) -> Vocabulary:
    """``RUN_DIR/spm.model`` if it is there (a resumed run), else trained and saved there."""
    path = run_dir / VOCAB_FILE
    if path.is_file():
        return Vocabulary.load(path)
    vocab = train_vocabulary(sentences, config)
    vocab.save(path)
    return vocab


def surface_form_graph(vocab: Vocabulary) -> RowGraph:
    """SSE-Graph over the vocabulary: pieces that are the same string once the word-start mark
    is removed and the case folded are neighbours (``▁Dog``, ``dog``, ``▁dog``); special ids
    are isolated."""
    keys: dict[str, int] = {}
    labels = torch.full((len(vocab),), -1, dtype=torch.long)
    for index in range(len(vocab)):
        if index in SPECIALS:
            continue
        key = vocab.piece(index).removeprefix(WORD_START).casefold()
        if key:
            labels[index] = keys.setdefault(key, len(keys))
    return RowGraph.from_groups(labels)
