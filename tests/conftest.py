"""Shared fixtures: tiny KG directories written on the fly, a fast config."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from embedlab.kge.config import build_config


def write_kg(
    folder: Path, *, entities: int = 12, relations: int = 3, n: int = 80, seed: int = 0
) -> Path:
    """Write a random KG with train/valid/test splits to ``folder``."""
    rng = random.Random(seed)
    triples = sorted(
        {
            (
                f"e{rng.randrange(entities)}",
                f"r{rng.randrange(relations)}",
                f"e{rng.randrange(entities)}",
            )
            for _ in range(n)
        }
    )
    rng.shuffle(triples)
    folder.mkdir(parents=True, exist_ok=True)
    cut1, cut2 = int(0.8 * len(triples)), int(0.9 * len(triples))
    for name, part in (
        ("train", triples[:cut1]),
        ("valid", triples[cut1:cut2]),
        ("test", triples[cut2:]),
    ):
        (folder / f"{name}.txt").write_text("".join("\t".join(t) + "\n" for t in part))
    return folder


@pytest.fixture
def tiny_kg(tmp_path: Path) -> Path:
    return write_kg(tmp_path / "tiny")


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def fast_config(dataset: str, **over: object):
    overrides = [
        f"dataset={dataset}",
        "model.dim=16",
        "train.max_epochs=4",
        "train.batch_size=32",
        "train.lr=0.05",
        "train.num_threads=1",
        "eval.every=2",
    ] + [f"{k}={v}" for k, v in over.items()]
    return build_config(overrides=overrides)


def write_ratings(folder: Path) -> Path:
    """A 40 x 30 rank-2 rating matrix, 60% observed, rounded to 1..5; 80/20 train/test, as
    ``train.tsv`` / ``test.tsv`` in ``folder`` (an MF dataset directory)."""
    g = torch.Generator().manual_seed(0)
    truth = 3 + torch.randn(40, 2, generator=g) @ torch.randn(2, 30, generator=g)
    folder.mkdir(parents=True)
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for u in range(40):
        for i in range(30):
            if torch.rand((), generator=g) < 0.6:
                split = "test" if torch.rand((), generator=g) < 0.2 else "train"
                r = int(truth[u, i].round().clamp(1, 5))
                lines[split].append(f"u{u}\ti{i}\t{r}")
    for split, rows in lines.items():
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def write_tiny_corpus(folder: Path, *, words: int = 12, seed: int = 0, lines: int = 120) -> Path:
    """Sentences from a noisy cycle over ``words`` words (learnable, not trivial): an LM corpus
    directory with ``train.txt`` / ``valid.txt`` / ``test.txt``."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(words)]
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", lines), ("valid", lines // 6), ("test", lines // 6)):
        out = []
        for _ in range(n):
            at, sentence = rng.randrange(words), []
            for _ in range(rng.randint(3, 8)):
                sentence.append(vocab[at])
                at = (at + 1) % words if rng.random() < 0.8 else rng.randrange(words)
            out.append(" " + " ".join(sentence) + " ")
        (folder / f"{split}.txt").write_text("\n".join(out) + "\n", encoding="utf-8")
    return folder
