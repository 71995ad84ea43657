"""3-D PCA projections of a trained MF run's embedding table (the SSE paper's Figures 1 and 3:
"Projecting 50-dimensional embeddings ... without SSE, with SSE-Graph, SSE-SE into 3D space using
PCA", Wu et al., NeurIPS 2019).

A run directory is what :func:`embedlab.recsys.run.train_mf` writes: ``config.yaml`` (an
:class:`MfConfig`) and ``checkpoints/{best,last}.safetensors``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch

from embedlab.embeddings.config import EmbeddingConfig
from embedlab.errors import UserError
from embedlab.recsys.config import MfConfig
from embedlab.recsys.graphs import item_labels
from embedlab.recsys.run import load_mf_dataset, load_run

Table = Literal["user", "item"]


def pca_3d(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Project the rows of ``x`` onto their first three principal components.

    Args:
        x: ``(N, d)`` rows (any float dtype); computed in float64 by an exact SVD of the centred
            rows.

    Returns:
        ``points (N, 3)`` float32 and ``explained (3,)`` float32, the fraction of the total
        variance along each component (descending, sum <= 1). Signs are fixed as scikit-learn's
        ``svd_flip``: each component's largest-magnitude loading is positive. Where ``N`` or ``d``
        is below 3 the missing components are zero columns with ratio 0.

    Raises:
        UserError: ``x`` is not a non-empty 2-D tensor.
    """
    if x.dim() != 2 or x.shape[0] == 0:
        raise UserError(f"PCA needs a non-empty (N, d) table, got shape {tuple(x.shape)}")
    centred = x.double() - x.double().mean(dim=0, keepdim=True)  # (N, d)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)  # s: (k,), vh: (k, d), k = min(N, d)
    k = min(3, s.numel())
    components = vh[:k]  # (k, d)
    top = components.abs().argmax(dim=1)  # (k,)
    signs = torch.sign(components[torch.arange(k, device=top.device), top])  # (k,)
    components = components * signs[:, None]
    points = torch.zeros(x.shape[0], 3, dtype=torch.float64, device=centred.device)
    points[:, :k] = centred @ components.T  # (N, k)
    total = (s**2).sum()
    explained = torch.zeros(3, dtype=torch.float64, device=s.device)
    if total > 0:
        explained[:k] = s[:k] ** 2 / total
    return points.float(), explained.float()


def load_table(run_dir: Path, table: Table) -> tuple[torch.Tensor, MfConfig]:
    """The trained ``table`` of an MF run (best, else last checkpoint) and its config.

    Returns:
        ``weights (N, d)`` float32 (``N`` = users or items of the run's dataset, in its row
        order) and the run's :class:`MfConfig`.

    Raises:
        UserError: unknown table, not an MF run directory, no checkpoint, or a checkpoint that
            does not fit the run's dataset.
    """
    if table not in ("user", "item"):
        raise UserError(f"unknown table {table!r}; choose user or item")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a directory")
    config, _, model = load_run(run_dir)
    layer = model.users if table == "user" else model.items
    return layer.weight.detach().float(), config


def table_labels(config: MfConfig, table: Table) -> tuple[torch.Tensor, list[str]]:
    """Row labels to colour a projection by: each item's first listed genre (ml-1m, ml-100k).

    Returns:
        ``(N,)`` int64 labels (-1 unknown) and the label names, for the run's dataset rebuilt
        from ``config`` (same split, filters and seed, hence the same rows).

    Raises:
        UserError: the user table (no labels are defined for users), or a dataset without item
            labels.
    """
    if table != "item":
        raise UserError("only item rows have labels (genres); use --color-by none for users")
    return item_labels(load_mf_dataset(config))


def merge_label_names(
    labelled: list[tuple[torch.Tensor, list[str]] | None],
) -> tuple[list[torch.Tensor | None], list[str]]:
    """Re-index several ``(labels (N_j,), names)`` into one list of names (first seen first).

    Returns:
        each entry's labels as ids into the merged names (-1 kept; ``None`` entries kept) and the
        merged names.
    """
    names: list[str] = []
    merged: list[torch.Tensor | None] = []
    for entry in labelled:
        if entry is None:
            merged.append(None)
            continue
        labels, own = entry
        names += [n for n in own if n not in names]
        ids = [names.index(n) for n in own] + [-1]
        index = torch.tensor(ids, dtype=torch.long, device=labels.device)  # (K + 1,)
        merged.append(index[labels])  # label -1 picks the appended -1
    return merged, names


def _number(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:g}"


def regularizer_title(config: MfConfig, table: Table) -> str:
    """The regularizer of ``table`` in words: ``no SSE``, ``SSE-Graph (p=0.01, ρ=10)``,
    ``SSE-SE (p=0.01)``, followed by ``+ dropout 0.1`` where dropout is used."""
    embedding: EmbeddingConfig = config.user_embedding if table == "user" else config.item_embedding
    sse = embedding.sse
    if sse.kind == "graph":
        title = f"SSE-Graph (p={_number(sse.p)}, ρ={_number(sse.rho)})"
    elif sse.kind == "se":
        title = f"SSE-SE (p={_number(sse.p)})"
    else:
        title = "no SSE"
    if embedding.dropout > 0:
        title += f" + dropout {_number(embedding.dropout)}"
    return title
