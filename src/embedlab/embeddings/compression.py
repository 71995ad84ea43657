"""Compression accounting for KD codes (``compression`` in ``metrics.json``).

Definition (stated in docs/kd.md): a float parameter costs 32 bits; a code costs
``ceil(log2 K)`` bits. For a KD table of N rows and width d,
``bits_full = 32 N d`` and ``bits_compressed = N D ceil(log2 K) + 32 (|W| + C)`` with ``|W|``
the code-embedding parameters (``K d'`` per position, or once when shared) and ``C`` the
composition's. Training-only state (code logits, encoder, pre-trained or online full table) is
not shipped (:func:`~embedlab.embeddings.kd_compact.export_kd`) and not counted.
``ratio = bits_full / bits_compressed``; the model-level ratio counts every other parameter at
32 bits on both sides.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from embedlab.embeddings.config import KdConfig
from embedlab.embeddings.kd import KdEmbedding
from embedlab.embeddings.kd_compact import code_bits
from embedlab.embeddings.kd_compose import composition_parameter_count
from embedlab.embeddings.sharded import sharded_layers

FLOAT_BITS = 32


def kd_parameter_count(*, config: KdConfig, dim: int) -> int:
    """Float parameters shipped by a KD table (Lemma 1 of the supplement: ``K D d' + C`` with
    per-position codebooks, ``K d' + C`` shared); independent of N."""
    positions = 1 if config.shared_codebook else config.D
    return positions * config.K * config.code_dim + composition_parameter_count(config, dim)


def minimal_code_length(*, num_rows: int, K: int) -> int:
    """The smallest D with ``K**D >= N`` (distinct codes for every row are then possible):
    ``ceil(log N / log K)``; Lemma 1's ``D = O(log N / log K)``."""
    D = max(1, math.ceil(math.log(num_rows) / math.log(K)))
    while num_rows <= K ** (D - 1) and D > 1:  # guard against float rounding
        D -= 1
    while num_rows > K**D:
        D += 1
    return D


def kd_table_bits(*, num_rows: int, dim: int, config: KdConfig) -> dict[str, float]:
    """Bits of one KD table: full fp32 vs codes + code embeddings + composition."""
    full = FLOAT_BITS * num_rows * dim
    code = num_rows * config.D * code_bits(config.K)
    floats = FLOAT_BITS * kd_parameter_count(config=config, dim=dim)
    return {
        "rows": num_rows,
        "dim": dim,
        "K": config.K,
        "D": config.D,
        "params_full": num_rows * dim,
        "bits_full": full,
        "bits_codes": code,
        "bits_codebooks_and_composition": floats,
        "bits_compressed": code + floats,
        "ratio": full / (code + floats),
    }


def compression_report(
    model: nn.Module, distilled: dict[str, float] | None = None
) -> dict[str, Any] | None:
    """Compression of every KD table of ``model`` and of the model as a whole; ``None`` when the
    model has no KD table. Keys: ``ratio``, ``embedding_params_full``, ``embedding_bits_full``,
    ``embedding_bits_compressed``, ``model_bits_full``, ``model_bits_compressed``,
    ``model_ratio``, ``tables`` (per table, see :func:`kd_table_bits`, plus
    ``distill_relative_error`` for the tables in ``distilled``), ``definition``."""
    tables: dict[str, dict[str, float]] = {}
    skip: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, KdEmbedding):
            tables[name] = kd_table_bits(num_rows=module.num_rows, dim=module.dim, config=module.kd)
            if distilled and name in distilled:
                tables[name]["distill_relative_error"] = distilled[name]
            skip.update(f"{name}.{p}" for p, _ in module.named_parameters())
    if not tables:
        return None
    other = sum(p.numel() for n, p in model.named_parameters() if n not in skip)
    # row-wise sharded tables hold their rows outside parameters()
    other += sum(t.num_rows * t.dim for t in sharded_layers(model).values())
    emb_full = sum(t["bits_full"] for t in tables.values())
    emb_comp = sum(t["bits_compressed"] for t in tables.values())
    model_full = emb_full + FLOAT_BITS * other
    model_comp = emb_comp + FLOAT_BITS * other
    return {
        "ratio": emb_full / emb_comp,
        "embedding_params_full": int(sum(t["params_full"] for t in tables.values())),
        "embedding_bits_full": int(emb_full),
        "embedding_bits_compressed": int(emb_comp),
        "model_bits_full": int(model_full),
        "model_bits_compressed": int(model_comp),
        "model_ratio": model_full / model_comp,
        "tables": tables,
        "definition": "fp32 = 32 bits/parameter; codes ceil(log2 K) bits; training-only code "
        "logits/encoder/teacher not counted (docs/kd.md)",
    }
