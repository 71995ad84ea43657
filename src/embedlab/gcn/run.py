"""A GCN run end to end: run directory, resumable full-batch training on the one loop
(:class:`~embedlab.gcn.task.GcnTask`), accuracy of the best-validation-loss checkpoint,
metrics.json; and reading a trained run back (:func:`load_run`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from embedlab.datasets.planetoid import PlanetoidGraph, load_planetoid
from embedlab.distributed import joined
from embedlab.embeddings import compression_report, set_training_progress
from embedlab.embeddings.kd_distill import distill_stage
from embedlab.errors import UserError
from embedlab.gcn.config import GcnConfig
from embedlab.gcn.model import Gcn
from embedlab.gcn.task import GcnTask
from embedlab.training.callbacks import Callback, TrainingProgress
from embedlab.training.device import resolve_device
from embedlab.training.loop import Loop
from embedlab.training.run_dir import (
    RunPaths,
    load_trained,
    prepare_shared_run_dir,
    read_run_config,
    will_resume,
    with_absolute_paths,
)
from embedlab.training.run_lock import training_scope
from embedlab.training.trackers import build_trackers


def build_model(
    config: GcnConfig, graph: PlanetoidGraph, *, teacher: torch.Tensor | None = None
) -> Gcn:
    """The GCN of ``config`` for ``graph``'s sizes, initialized from the global torch RNG;
    ``teacher (N, embedding_dim)``: the pre-trained node table of PDG (:func:`teacher_table`;
    ``None`` where a checkpoint, which holds it, will be loaded)."""
    return Gcn(
        num_nodes=graph.num_nodes,
        num_features=graph.num_features,
        num_classes=graph.num_classes,
        config=config,
        teacher=teacher,
    )


def teacher_table(config: GcnConfig, graph: PlanetoidGraph) -> torch.Tensor | None:
    """The node table ``(N, embedding_dim)`` of ``train.init_from``'s best (else last)
    checkpoint, composed rows where it is KD codes; ``None`` without ``init_from``.

    Raises:
        UserError: ``init_from`` is not a GCN run (or has no checkpoint), was trained on a graph
            with another number of nodes, has no node table, or one of another width.
    """
    source = config.train.init_from
    if not source:
        return None
    src_config, src_graph, src_model = load_run(Path(source))
    if src_graph.num_nodes != graph.num_nodes:
        raise UserError(
            f"train.init_from={source}: trained on {src_config.dataset!r} "
            f"({src_graph.num_nodes} nodes), this run's graph has {graph.num_nodes}"
        )
    if src_model.node_embedding is None:
        raise UserError(
            f"train.init_from={source}: that run has no node table "
            f"(model.features={src_config.model.features})"
        )
    if src_config.model.embedding_dim != config.model.embedding_dim:
        raise UserError(
            f"train.init_from={source}: its node table is {src_config.model.embedding_dim} "
            f"wide, model.embedding_dim is {config.model.embedding_dim}"
        )
    with torch.no_grad():
        return src_model.node_embedding.all().detach().clone()  # (N, embedding_dim)


def dataset_summary(graph: PlanetoidGraph) -> dict[str, Any]:
    """``metrics.json``'s ``dataset``: name, nodes, features, classes, edges, split sizes."""
    return {
        "name": graph.name,
        "nodes": graph.num_nodes,
        "features": graph.num_features,
        "classes": graph.num_classes,
        "edges": int(graph.edges.shape[1]),
        "splits": {split: int(ids.numel()) for split, ids in graph.splits.items()},
    }


def train_gcn(
    config: GcnConfig, run_dir: Path, *, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume) a GCN run in ``run_dir``, evaluate its best checkpoint, write metrics.

    Each epoch is one full-batch Adam step on the training nodes, then the valid loss and
    accuracy; the best epoch by ``eval.metric`` is ``checkpoints/best``;
    ``train.early_stopping_patience`` validations without a better one stop the run. Re-running on an existing run directory
    with the same config resumes from ``checkpoints/last`` (``overwrite``: start again).
    ``metrics.json``: ``{"valid", "test"}`` (``accuracy``, ``loss``, ``nodes``),
    ``best_epoch``, ``timing``, ``compression`` (of a KD node table, ``null`` otherwise) and
    ``dataset`` (:func:`dataset_summary`).

    Raises:
        UserError: missing or malformed data, bad config / run-directory combinations,
            torchrun (full-batch training runs in one process).
    """
    start = time.perf_counter()
    with joined(resolve_device(config.device)) as (world, device), training_scope(run_dir):
        if world.parallel:
            raise UserError("gcn: full-batch training runs in one process; do not use torchrun")
        config = with_absolute_paths(config)
        if config.train.num_threads:
            torch.set_num_threads(config.train.num_threads)
        # missing data fails before a run directory is written
        graph = load_planetoid(config.dataset, valid_size=config.data.valid_size)
        # a run resumed from checkpoints/last finds the PDG teacher there: init_from is not read
        fresh = not will_resume(run_dir, overwrite=overwrite)
        teacher = teacher_table(config, graph) if fresh else None
        torch.manual_seed(config.seed)  # before the weights are initialized
        model = build_model(config, graph, teacher=teacher).to(device)
        prepare_shared_run_dir(run_dir, config, overwrite=overwrite, world=world)
        task = GcnTask(model=model, graph=graph, config=config, device=device)
        paths = RunPaths(run_dir)
        callbacks: list[Callback] = [TrainingProgress(set_training_progress)]
        callbacks += build_trackers(config.tracker, paths, is_main=world.is_main)
        loop = Loop(
            task=task,
            config=config.train,
            eval_every=config.eval.every,
            paths=paths,
            device=device,
            callbacks=callbacks,
            progress=progress,
        )
        summary = dataset_summary(graph)
        # a resumed run's tables come from its checkpoint; its distillation errors from its trace
        distilled = distill_stage(model, seed=config.seed, trace=loop.trace, resuming=not fresh)
        loop.run(seed=config.seed, start_fields={"nodes": graph.num_nodes})
        extra = {"compression": compression_report(model, distilled), "dataset": summary}
        return loop.finish(
            evaluate=task.evaluate, splits=("valid", "test"), extra=extra, wall_start=start
        )


def load_run(run_dir: Path) -> tuple[GcnConfig, PlanetoidGraph, Gcn]:
    """Config, graph and the best (else last) model of a GCN run directory, in eval mode.

    Raises:
        UserError: not a GCN run directory, no checkpoint yet, data missing, or a checkpoint
            that does not fit the graph as read now.
    """
    config = read_run_config(run_dir, GcnConfig)
    graph = load_planetoid(config.dataset, valid_size=config.data.valid_size)
    model = build_model(config, graph)
    load_trained(run_dir, model, fits=f"dataset {config.dataset!r} ({graph.num_nodes} nodes)")
    return config, graph, model.eval()
