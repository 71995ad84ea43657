"""The shipped NMT configs validate, describe the issue's small Transformer and differ only in
SSE-SE; the multi30k registry entry and the real data (where EMBEDLAB_DATA_DIR has it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from embedlab.config.io import build_typed_config
from embedlab.datasets.registry import REGISTRY
from embedlab.nmt.config import NmtConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "nmt" / "multi30k"


def load(name: str) -> NmtConfig:
    return build_typed_config(NmtConfig, path=CONFIGS / name)


def test_small_transformer_and_its_sse_twin() -> None:
    base, sse = load("transformer-small.yaml"), load("transformer-small-sse.yaml")
    m = base.model
    assert (m.encoder_layers, m.decoder_layers, m.d_model, m.heads, m.ffn, m.dropout) == (
        3, 3, 256, 4, 1024, 0.1)  # fmt: skip
    assert base.train.label_smoothing == 0.1 and base.eval.beam == 4
    assert base.eval.length_penalty == 0.6 and base.eval.average_last == 5
    a, b = base.model_dump(), sse.model_dump()
    assert {k for k in a if a[k] != b[k]} == {"source_embedding", "target_embedding"}
    for table in (sse.source_embedding, sse.target_embedding):
        assert (table.sse.kind, table.sse.p) == ("se", 0.01)
    for table in (base.source_embedding, base.target_embedding):
        assert table.sse.kind == "none"


def test_every_shipped_config_validates() -> None:
    for path in sorted(CONFIGS.glob("*.yaml")):
        assert build_typed_config(NmtConfig, path=path).dataset == "multi30k"


def test_registry_entry_matches_provenance() -> None:
    spec = REGISTRY["multi30k"]
    assert spec.kind == "parallel"
    assert set(spec.files) == {f"{p}.{lang}.gz" for p in ("train", "val", "test_2016_flickr")
                               for lang in ("en", "de")}  # fmt: skip
    assert spec.files["train.en.gz"].sha256.startswith("d79cfa99")


DATA = os.environ.get("EMBEDLAB_DATA_DIR")


@pytest.mark.skipif(
    not (DATA and (Path(DATA) / "multi30k").is_dir()), reason="needs EMBEDLAB_DATA_DIR/multi30k"
)
def test_real_multi30k_counts() -> None:
    from embedlab.nmt.data import load_splits

    splits = load_splits(load("transformer-small.yaml"))
    assert {k: len(v) for k, v in splits.items()} == {"train": 29000, "valid": 1014, "test": 1000}
    assert splits["test"].source[0] == "A man in an orange hat starring at something."
