"""A KGE run end to end: run directory, training (resumable), final evaluation, metrics.json."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from embedlab.datasets.kg import KgDataset, load_kg
from embedlab.distributed import SINGLE, World, joined
from embedlab.embeddings import set_training_progress
from embedlab.embeddings.compression import compression_report
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.kd_distill import (
    distill_stage,
    kd_layers,
    require_teacher_run,
    same_kd_structure,
)
from embedlab.embeddings.sharded import replicated
from embedlab.errors import UserError
from embedlab.evaluation.filtering import KnownAnswers
from embedlab.evaluation.kge_eval import evaluate_kge, known_answers
from embedlab.kge.config import KgeConfig
from embedlab.kge.model import KgeModel
from embedlab.kge.training_types import build_task
from embedlab.training.callbacks import TrainingProgress
from embedlab.training.checkpoint import checkpoint_exists
from embedlab.training.device import resolve_device
from embedlab.training.loop import Loop
from embedlab.training.run_dir import (
    RunPaths,
    load_trained,
    prepare_shared_run_dir,
    read_run_config,
    with_absolute_paths,
)
from embedlab.training.run_lock import training_scope
from embedlab.training.trackers import build_trackers


def build_model(config: KgeConfig, dataset: KgDataset) -> KgeModel:
    """The model for ``config`` on ``dataset``; SSE-Graph on entities uses the training graph
    (:class:`KgeConfig` refuses other graph sources and SSE-Graph on relations)."""
    entity_graph = None
    if config.entity_embedding.sse.kind == "graph":
        train = dataset.splits["train"]
        entity_graph = RowGraph.from_edges(
            num_rows=dataset.num_entities, src=train[:, 0], dst=train[:, 2]
        )
    return KgeModel(
        num_entities=dataset.num_entities,
        num_relations=dataset.num_relations,
        config=config,
        entity_graph=entity_graph,
    )


def load_run(
    run_dir: Path, *, device: torch.device | str = "cpu"
) -> tuple[KgeConfig, KgDataset, KgeModel]:
    """Config, dataset and the best (else last) model of a run directory, in eval mode.

    A run trained with a row-wise sharded entity table loads into a plain table (one process:
    evaluate, export, predict); the fused optimizer's state in its checkpoint is not read.

    Raises:
        UserError: not a run directory, no checkpoint yet, or one that does not fit the
            dataset as resolved now.
    """
    config = read_run_config(run_dir, KgeConfig)
    dataset = load_kg(config.dataset)
    plain = config.entity_embedding.model_copy(update={"sharding": "none"})
    model = build_model(config.model_copy(update={"entity_embedding": plain}), dataset).to(device)
    fits = (
        f"dataset {config.dataset!r} ({dataset.num_entities} entities, "
        f"{dataset.num_relations} relations)"
    )
    load_trained(run_dir, model, fits=fits, map_location=device)
    model.eval()
    return config, dataset, model


def init_from_run(model: KgeModel, source: Path, dataset: KgDataset) -> None:
    """Initialize ``model`` with the best (else last) weights of run directory ``source``.

    Pre-training (paper 002, §6.3, table 3): any loss and training type may be used for either
    run; the model, dimensions and dataset must match. A KD-code table of ``model`` whose
    source table is a KD table of the same structure (N, d, K, D, code_dim, composition, reduce,
    hidden, shared_codebook, guidance, autoencode: the same state-dict keys and shapes,
    :func:`~embedlab.embeddings.kd_distill.same_kd_structure`) takes over that table's full
    state: code logits or encoder (so the same hard codes), code embeddings, composition and the
    pre-trained table ``u`` (staged training: PDG warm start, joint fine-tuning, frozen-code
    stage; docs/kd.md). Any other KD table of ``model`` is not copied: with
    ``kd.guidance: pdg`` the source's table (composed, if it is KD too) becomes its pre-trained
    table ``u`` (paper 003, PDG). Every other parameter is copied.

    Raises:
        UserError: ``source`` is not a run, another dataset, or a parameter's shape differs.
    """
    src_config, src_dataset, src_model = load_run(source)
    if (
        src_dataset.entity_ids != dataset.entity_ids
        or src_dataset.relation_ids != dataset.relation_ids
    ):
        raise UserError(
            f"--init-from {source}: trained on dataset {src_config.dataset!r}, whose entities or "
            "relations differ from this run's"
        )
    kd_tables = kd_layers(model)
    for name, layer in kd_tables.items():
        src_table = getattr(src_model, name)
        if same_kd_structure(layer, src_table):
            layer.load_state_dict(src_table.state_dict())
        elif layer.kd.guidance == "pdg":
            with torch.no_grad():
                teacher = src_table.lookup_all()
            if teacher.shape != layer.teacher.shape:
                raise UserError(
                    f"--init-from {source}: its {name} table has shape {tuple(teacher.shape)}, "
                    f"this run's KD table needs {tuple(layer.teacher.shape)} (same model.dim)"
                )
            layer.teacher.copy_(teacher)
    state = src_model.state_dict()
    mine = {k: v for k, v in model.state_dict().items() if k.split(".")[0] not in kd_tables}
    bad = [k for k in mine if k not in state or state[k].shape != mine[k].shape]
    if bad:
        raise UserError(
            f"--init-from {source}: model {src_config.model.name!r} "
            f"(dim {src_config.model.dim}) does not fit this run's parameters: {', '.join(bad)}"
        )
    model.load_state_dict({k: state[k] for k in mine}, strict=False)


def evaluate_split(
    config: KgeConfig,
    dataset: KgDataset,
    model: KgeModel,
    split: str,
    known: KnownAnswers,
    world: World = SINGLE,
) -> dict[str, Any]:
    """Filtered metrics of ``model`` on one split (``known``: the filter index; queries split
    across the ranks of ``world`` and gathered), with the unfiltered ones under ``raw`` and each
    relation's under ``by_relation`` (:func:`~embedlab.evaluation.kge_eval.evaluate_kge`)."""
    device = next(model.parameters()).device
    start = time.perf_counter()
    with replicated(model):  # sharded tables: one gather, then local lookups
        metrics = evaluate_kge(
            model,
            dataset.splits[split].to(device),
            known,
            ties=config.eval.ties,
            batch_size=config.eval.batch_size,
            world=world,
            raw=True,
            relation_labels=dataset.relation_ids,
        )
    seconds = time.perf_counter() - start
    metrics["seconds"] = seconds
    metrics["queries_per_s"] = metrics["num_queries"] / seconds
    metrics["unseen_entity_triples"] = dataset.unseen_entity_triples(split)
    metrics["by_relation"] = metrics.pop("by_relation")  # the long part last
    return metrics


def evaluate_splits(
    config: KgeConfig,
    dataset: KgDataset,
    model: KgeModel,
    splits: tuple[str, ...],
    known: KnownAnswers | None = None,
) -> dict[str, Any]:
    """Filtered metrics of ``model`` on each split (``known``: the filter index, built if None)."""
    if known is None:
        device = next(model.parameters()).device
        known = known_answers(dataset.all_triples().to(device), dataset.num_relations)
    return {split: evaluate_split(config, dataset, model, split, known) for split in splits}


def train_run(
    config: KgeConfig, run_dir: Path, *, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume) a run, evaluate its best checkpoint, write ``metrics.json``.

    ``train.max_minutes`` bounds training plus periodic validation; loading the data and the
    final evaluation of valid and test come on top (reported as ``timing.wall_seconds``).
    Under torchrun, every process calls this: data-parallel training (:mod:`embedlab.distributed`).
    """
    sharded = config.entity_embedding.sharding != "none"
    device = resolve_device(config.device)
    if sharded and device.type != "cpu":
        raise UserError(
            f"entity_embedding.sharding=row_wise runs on CPU ranks (gloo; TorchRec's CPU kernels "
            f"as installed by make torchrec), not on {device}: add --set device=cpu"
        )
    with joined(device, need_group=sharded) as (world, device), training_scope(run_dir):
        return _train(
            config, run_dir, overwrite=overwrite, progress=progress, world=world, device=device
        )


def _train(
    config: KgeConfig,
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
    config = with_absolute_paths(config)
    dataset = load_kg(config.dataset)
    prepare_shared_run_dir(run_dir, config, overwrite=overwrite, world=world)
    # resuming = a checkpoint to resume from (a run killed before its first checkpoint starts
    # afresh: init_from and the KD distillation stage run again)
    resuming = checkpoint_exists(RunPaths(run_dir).last)
    torch.manual_seed(config.seed)
    model = build_model(config, dataset)
    pdg = [n for n, layer in kd_layers(model).items() if layer.kd.guidance == "pdg"]
    require_teacher_run(pdg, config.train.init_from)
    if config.train.init_from and not resuming:
        init_from_run(model, Path(config.train.init_from), dataset)
    model.to(device)
    known = known_answers(dataset.all_triples().to(device), dataset.num_relations)
    task = build_task(model=model, dataset=dataset, known=known, config=config, world=world)
    loop = Loop(
        task=task,
        config=config.train,
        eval_every=config.eval.every,
        paths=RunPaths(run_dir),
        device=device,
        callbacks=[
            TrainingProgress(set_training_progress),
            *build_trackers(config.tracker, RunPaths(run_dir), is_main=world.is_main),
        ],
        progress=progress,
        world=world,
    )
    # a resumed run's tables come from its checkpoint; its distillation errors from its trace
    distilled = distill_stage(model, seed=config.seed, trace=loop.trace, resuming=resuming)
    loop.run(seed=config.seed)
    compression = compression_report(model, distilled)
    return loop.finish(
        evaluate=lambda split: evaluate_split(config, dataset, model, split, known, world),
        splits=("valid", "test"),
        extra={"compression": compression} if compression is not None else {},
        wall_start=start,
    )
