"""An MF run end to end: run directory, resumable training, evaluation, metrics.json."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import torch

from embedlab.datasets.ratings import RatingDataset, load_ratings
from embedlab.distributed import World, joined
from embedlab.embeddings.config import EmbeddingConfig
from embedlab.recsys.config import MfConfig
from embedlab.recsys.graphs import build_graph
from embedlab.recsys.model import MatrixFactorization
from embedlab.recsys.task import MfTask
from embedlab.training.device import resolve_device
from embedlab.training.loop import Loop
from embedlab.training.run_dir import (
    RunPaths,
    load_trained,
    prepare_shared_run_dir,
    read_run_config,
)
from embedlab.training.run_lock import training_scope
from embedlab.training.trackers import build_trackers


def load_mf_dataset(config: MfConfig) -> RatingDataset:
    """The rating dataset and split ``config`` names (``dataset``, ``data.*``, ``seed``).

    Raises:
        UserError: unknown dataset/protocol, empty split. DatasetError: missing/malformed files.
    """
    data = config.data
    return load_ratings(
        config.dataset,
        protocol=data.protocol,
        valid_fraction=data.valid_fraction,
        sparse_users=data.sparse_users,
        seed=config.seed,
    )


def build_mf_model(config: MfConfig, dataset: RatingDataset) -> MatrixFactorization:
    """The model with the graphs its SSE-Graph tables need.

    Raises:
        UserError: a graph unknown for the dataset (the other rules are config validators).
    """
    tables: dict[Literal["user", "item"], EmbeddingConfig] = {
        "user": config.user_embedding,
        "item": config.item_embedding,
    }
    graphs = {
        name: build_graph(dataset, table=name, source=table.sse.graph)
        if table.sse.kind == "graph"
        else None
        for name, table in tables.items()
    }
    model = MatrixFactorization(
        num_users=dataset.num_users,
        num_items=dataset.num_items,
        config=config,
        user_graph=graphs["user"],
        item_graph=graphs["item"],
    )
    model.mean.fill_(float(dataset.splits["train"].ratings.double().mean()))
    return model


def _laplacians(
    config: MfConfig, dataset: RatingDataset, device: torch.device
) -> tuple[tuple[torch.Tensor, float] | None, tuple[torch.Tensor, float] | None]:
    """``(L_U, λ_U)`` and ``(L_I, λ_I)`` for GRALS (``None`` where the weight is 0)."""
    lap = config.train.laplacian
    user = (
        (build_graph(dataset, table="user", source=lap.user_graph).laplacian().to(device), lap.user)
        if lap.user
        else None
    )
    item = (
        (build_graph(dataset, table="item", source=lap.item_graph).laplacian().to(device), lap.item)
        if lap.item
        else None
    )
    return user, item


def train_mf(
    config: MfConfig, run_dir: Path, *, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume) an MF run in ``run_dir`` and write ``metrics.json``; returns the metrics.

    Each epoch is one pass of ``train.method`` on the one loop (:class:`MfTask`). Every
    ``eval.every`` epochs the trace's ``valid`` event records valid (when
    ``data.valid_fraction > 0``) and test RMSE/MAE; with a valid split, the best valid-RMSE
    epoch is checkpointed as ``best`` and reported, and early stopping may end the run.
    ``metrics.json``: ``{"valid", "test", "best_epoch", "timing", "dataset"}``.

    Under torchrun every process calls this (SGD only: :class:`MfTask`).

    Raises:
        UserError: bad config/run directory combinations (see :func:`prepare_run_dir`).
    """
    with joined(resolve_device(config.device)) as (world, device), training_scope(run_dir):
        return _train(
            config, run_dir, overwrite=overwrite, progress=progress, world=world, device=device
        )


def _train(
    config: MfConfig,
    run_dir: Path,
    *,
    overwrite: bool,
    progress: bool,
    world: World,
    device: torch.device,
) -> dict[str, Any]:
    start = time.perf_counter()
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    dataset = load_mf_dataset(config)
    torch.manual_seed(config.seed)  # before the tables are initialized
    model = build_mf_model(config, dataset).to(device)
    user_lap, item_lap = _laplacians(config, dataset, device)
    # only a config that builds is written to the run directory
    prepare_shared_run_dir(run_dir, config, overwrite=overwrite, world=world)
    task = MfTask(
        model=model, dataset=dataset, config=config, laplacians=(user_lap, item_lap), world=world
    )
    loop = Loop(
        task=task,
        config=config.train,
        eval_every=config.eval.every,
        paths=RunPaths(run_dir),
        device=device,
        callbacks=build_trackers(config.tracker, RunPaths(run_dir), is_main=world.is_main),
        progress=progress,
        world=world,
    )
    loop.run(seed=config.seed)
    splits = ("test", "valid") if task.metric else ("test",)
    dataset_info = {
        "name": dataset.name,
        "protocol": dataset.protocol,
        "users": dataset.num_users,
        "items": dataset.num_items,
        "ratings": {k: len(v) for k, v in dataset.splits.items()},
    }
    return loop.finish(
        evaluate=task.evaluate, splits=splits, extra={"dataset": dataset_info}, wall_start=start
    )


def load_run(run_dir: Path) -> tuple[MfConfig, RatingDataset, MatrixFactorization]:
    """Config, dataset and the best (else last) model of an MF run directory, in eval mode.

    Raises:
        UserError: not an MF run directory, no checkpoint yet, or one that does not fit the
            dataset as resolved now.
    """
    config = read_run_config(run_dir, MfConfig)
    dataset = load_mf_dataset(config)
    model = build_mf_model(config, dataset)
    fits = f"dataset {config.dataset!r} ({dataset.num_users} users, {dataset.num_items} items)"
    load_trained(run_dir, model, fits=fits)
    model.eval()
    return config, dataset, model
