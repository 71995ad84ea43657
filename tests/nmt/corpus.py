"""A synthetic parallel corpus written on the fly: the target is the source's words reversed and
renamed (learnable by a tiny Transformer in a few epochs)."""

from __future__ import annotations

import random
from pathlib import Path

from embedlab.config.io import build_typed_config
from embedlab.nmt.config import NmtConfig

TINY = ["data.vocab_size=60", "model.d_model=16", "model.heads=2", "model.ffn=32",
        "model.encoder_layers=1", "model.decoder_layers=1", "train.max_tokens=256",
        "train.warmup_steps=5", "train.lr=0.005", "train.num_threads=1", "eval.beam=2",
        "eval.average_last=2", "eval.valid_bleu_sentences=5", "eval.max_len_b=8"]  # fmt: skip


def write_parallel(folder: Path, *, train: int = 200, other: int = 20, seed: int = 0) -> Path:
    """``train.{en,de}``, ``val.{en,de}``, ``test_2016_flickr.{en,de}`` (plain text)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", train), ("val", other), ("test_2016_flickr", other)):
        src, tgt = [], []
        for _ in range(n):
            words = [f"w{rng.randrange(12)}" for _ in range(rng.randint(2, 6))]
            src.append(" ".join(words))
            tgt.append(" ".join(f"z{w[1:]}" for w in reversed(words)) + ".")
        (folder / f"{prefix}.en").write_text("\n".join(src) + "\n", encoding="utf-8")
        (folder / f"{prefix}.de").write_text("\n".join(tgt) + "\n", encoding="utf-8")
    return folder


def tiny_config(data: Path, *over: str) -> NmtConfig:
    base = [f"dataset={data}", "train.max_epochs=3", *TINY]
    return build_typed_config(NmtConfig, overrides=base + list(over))
