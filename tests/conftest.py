"""Shared fixtures: tiny KG directories written on the fly, a fast config."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

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
