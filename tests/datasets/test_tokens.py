"""Token corpora: vocabulary, <eos>, counts, custom directories, OOV errors, the real PTB."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from embedlab.datasets.tokens import EOS, load_corpus
from embedlab.errors import DatasetError, UserError


def write_corpus(folder: Path, splits: dict[str, str], *, prefix: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in splits.items():
        (folder / f"{prefix}{split}.txt").write_text(text, encoding="utf-8")
    return folder


TINY = {
    "train": " the cat sat \n the dog sat on the cat \n",
    "valid": " the dog \n\n",  # a blank line is a sentence of its own: just <eos>
    "test": " cat on the dog sat \n",
}


@pytest.mark.parametrize("prefix", ["", "ptb."])
def test_counts_vocab_and_eos(tmp_path: Path, prefix: str) -> None:
    corpus = load_corpus(str(write_corpus(tmp_path / "c", TINY, prefix=prefix)))
    # ids in order of first appearance in train, <eos> at the end of the first line
    assert corpus.vocab == ["the", "cat", "sat", EOS, "dog", "on"]
    assert corpus.word_to_id == {w: i for i, w in enumerate(corpus.vocab)}
    assert {s: corpus.num_tokens(s) for s in ("train", "valid", "test")} == {
        "train": 3 + 1 + 6 + 1,
        "valid": 2 + 1 + 1,
        "test": 5 + 1,
    }
    ids = corpus.splits["train"]
    assert ids.dtype == torch.int64
    assert [corpus.vocab[i] for i in ids.tolist()] == (
        ["the", "cat", "sat", "<eos>", "the", "dog", "sat", "on", "the", "cat", "<eos>"]
    )
    assert [corpus.vocab[i] for i in corpus.splits["valid"].tolist()] == ["the", "dog", EOS, EOS]


def test_a_word_outside_the_training_vocabulary_names_file_and_line(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "c", {**TINY, "test": " the cat \n the zebra sat \n"})
    with pytest.raises(DatasetError, match=r"test\.txt:2: word 'zebra'"):
        load_corpus(str(folder))


def test_missing_files_and_bad_bytes(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "c", {"train": "a b\n", "valid": "a\n"})
    with pytest.raises(DatasetError, match="not a token corpus"):
        load_corpus(str(folder))
    (folder / "test.txt").write_bytes(b"a b\na \xff b\n")
    with pytest.raises(DatasetError, match=r"test\.txt:2: not valid UTF-8"):
        load_corpus(str(folder))


def test_a_registered_dataset_of_another_kind_is_refused() -> None:
    with pytest.raises(UserError, match="not a token corpus"):
        load_corpus("umls")


DATA = os.environ.get("EMBEDLAB_DATA_DIR")


@pytest.mark.skipif(
    not (DATA and (Path(DATA) / "ptb").is_dir()), reason="needs EMBEDLAB_DATA_DIR with ptb/"
)
def test_real_ptb_counts() -> None:
    corpus = load_corpus("ptb")
    assert corpus.vocab_size == 10_000
    assert {s: corpus.num_tokens(s) for s in ("train", "valid", "test")} == {
        "train": 929_589,
        "valid": 73_760,
        "test": 82_430,
    }
    assert "<unk>" in corpus.word_to_id and "N" in corpus.word_to_id
