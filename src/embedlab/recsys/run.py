"""An MF run end to end: run directory, resumable training, evaluation, metrics.json."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm

from embedlab.datasets.ratings import RatingDataset, load_ratings
from embedlab.embeddings.config import EmbeddingConfig
from embedlab.errors import UserError
from embedlab.recsys.als import als_epoch
from embedlab.recsys.config import MfConfig, MfTrainConfig
from embedlab.recsys.graphs import build_graph
from embedlab.recsys.metrics import rating_metrics
from embedlab.recsys.model import MatrixFactorization
from embedlab.recsys.sgd import sgd_epoch
from embedlab.training.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from embedlab.training.loop import RunPaths, rng_state
from embedlab.training.run_dir import prepare_run_dir
from embedlab.training.trace import Trace


@dataclass
class MfState:
    """What a resumed MF run continues from (stored in the checkpoint's JSON state)."""

    epoch: int = 0
    best_rmse: float | None = None
    best_epoch: int = 0
    bad_validations: int = 0
    stopped: bool = False  # early stopping ended the run: a re-run only re-evaluates
    epoch_seconds: list[float] = field(default_factory=list)


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
        UserError: a KD-code table (not supported for MF), SSE or dropout asked with ALS/GRALS (closed-form solves have no sampled
            lookups), or a graph unknown for the dataset.
    """
    tables: dict[Literal["user", "item"], EmbeddingConfig] = {
        "user": config.user_embedding,
        "item": config.item_embedding,
    }
    for name, table in tables.items():
        if table.kind != "lookup":
            raise UserError(
                f"{name}_embedding.kind={table.kind}: MF trains with hand-written gradients on "
                "plain tables; KD codes are available for KGE and LM tables"
            )
    if config.train.method != "sgd":
        for name, table in tables.items():
            if table.sse.kind != "none" or table.dropout > 0:
                raise UserError(
                    f"{name}_embedding: SSE and dropout act on sampled lookups and need "
                    f"train.method=sgd, not {config.train.method}"
                )
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
    config: MfConfig, dataset: RatingDataset
) -> tuple[tuple[torch.Tensor, float] | None, tuple[torch.Tensor, float] | None]:
    """``(L_U, λ_U)`` and ``(L_I, λ_I)`` for GRALS (``None`` where the weight is 0).

    Raises:
        UserError: Laplacian weights with a method other than ``grals``.
    """
    lap = config.train.laplacian
    if (lap.user or lap.item) and config.train.method != "grals":
        raise UserError("train.laplacian weights need train.method=grals")
    user = (
        (build_graph(dataset, table="user", source=lap.user_graph).laplacian(), lap.user)
        if lap.user
        else None
    )
    item = (
        (build_graph(dataset, table="item", source=lap.item_graph).laplacian(), lap.item)
        if lap.item
        else None
    )
    return user, item


def _evaluate(model: MatrixFactorization, dataset: RatingDataset, split: str) -> dict[str, float]:
    part = dataset.splits[split]
    return rating_metrics(
        model,
        users=part.users,
        items=part.items,
        ratings=part.ratings,
        scale=dataset.rating_scale,
    )


def train_mf(
    config: MfConfig, run_dir: Path, *, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume) an MF run in ``run_dir`` and write ``metrics.json``; returns the metrics.

    Each epoch is one pass of ``train.method``. Every ``eval.every`` epochs the trace records
    valid (when ``data.valid_fraction > 0``) and test RMSE/MAE; with a valid split, the best
    valid-RMSE epoch is checkpointed as ``best`` and reported, and early stopping may end the run.
    ``metrics.json``: ``{"valid", "test", "timing": {"epoch_seconds_median", "train_seconds",
    "epochs"}, "best_epoch", "dataset": {...}}``.

    Raises:
        UserError: bad config/run directory combinations (see :func:`prepare_run_dir`).
    """
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    dataset = load_mf_dataset(config)
    torch.manual_seed(config.seed)  # before the tables are initialized
    model = build_mf_model(config, dataset)
    user_lap, item_lap = _laplacians(config, dataset)
    # only a config that builds is written to the run directory
    resuming = prepare_run_dir(run_dir, config, overwrite=overwrite)
    paths = RunPaths(run_dir)
    trace = Trace(paths.trace)
    generator = torch.Generator().manual_seed(config.seed)
    state = MfState()
    if resuming and checkpoint_exists(paths.last):
        try:
            rng, saved = load_checkpoint(paths.last, model=model)
            state = MfState(**saved["mf"])
        except (RuntimeError, TypeError, KeyError) as exc:
            raise UserError(
                f"{paths.last}.safetensors cannot be resumed with dataset {config.dataset!r} as "
                f"resolved now ({type(exc).__name__}); use --overwrite or another --out"
            ) from None
        torch.set_rng_state(rng["torch"])
        generator.set_state(rng["shuffle"])
        trace.write("resume", epoch=state.epoch)
    train, tc = dataset.splits["train"], config.train
    has_valid = "valid" in dataset.splits
    bar = tqdm(total=tc.max_epochs, initial=state.epoch, disable=not progress, unit="epoch")
    while state.epoch < tc.max_epochs and not state.stopped:
        start = time.perf_counter()
        if tc.method == "sgd":
            loss = sgd_epoch(
                model,
                users=train.users,
                items=train.items,
                ratings=train.ratings,
                lr=tc.lr,
                weight_decay=tc.weight_decay,
                batch_size=tc.batch_size,
                generator=generator,
            )
        else:
            loss = als_epoch(
                model,
                users=train.users,
                items=train.items,
                ratings=train.ratings,
                weight_decay=tc.weight_decay,
                user_laplacian=user_lap,
                item_laplacian=item_lap,
                cg_iterations=tc.laplacian.cg_iterations,
            )
        seconds = time.perf_counter() - start
        state.epoch += 1
        state.epoch_seconds.append(seconds)
        trace.write("epoch", epoch=state.epoch, loss=loss, seconds=seconds)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", s=f"{seconds:.3f}")
        if state.epoch % config.eval.every == 0 or state.epoch == tc.max_epochs:
            state.stopped = _validate(model, dataset, state, trace, paths, generator, has_valid, tc)
        if state.epoch % tc.checkpoint_every == 0 or state.stopped or state.epoch == tc.max_epochs:
            _save(paths.last, model, generator, state)
    bar.close()
    if has_valid and checkpoint_exists(paths.best):
        load_checkpoint(paths.best, model=model)
    metrics: dict[str, Any] = {"test": _evaluate(model, dataset, "test")}
    if has_valid:
        metrics["valid"] = _evaluate(model, dataset, "valid")
    metrics["best_epoch"] = state.best_epoch if has_valid else state.epoch
    metrics["timing"] = {
        "epochs": state.epoch,
        "epoch_seconds_median": statistics.median(state.epoch_seconds or [0.0]),
        "train_seconds": sum(state.epoch_seconds),
    }
    metrics["dataset"] = {
        "name": dataset.name,
        "protocol": dataset.protocol,
        "users": dataset.num_users,
        "items": dataset.num_items,
        "ratings": {k: len(v) for k, v in dataset.splits.items()},
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    return metrics


def _save(
    path: Path, model: MatrixFactorization, generator: torch.Generator, state: MfState
) -> None:
    save_checkpoint(path, model=model, rng=rng_state(generator), state={"mf": asdict(state)})


def _validate(
    model: MatrixFactorization,
    dataset: RatingDataset,
    state: MfState,
    trace: Trace,
    paths: RunPaths,
    generator: torch.Generator,
    has_valid: bool,
    tc: MfTrainConfig,
) -> bool:
    """Record valid/test metrics; checkpoint ``best``; return True to stop early."""
    metrics = {"test": _evaluate(model, dataset, "test")}
    if has_valid:
        metrics["valid"] = _evaluate(model, dataset, "valid")
    trace.write("eval", epoch=state.epoch, **metrics)
    if not has_valid:
        return False
    rmse = metrics["valid"]["rmse"]
    if state.best_rmse is None or rmse < state.best_rmse:
        state.best_rmse, state.best_epoch, state.bad_validations = rmse, state.epoch, 0
        _save(paths.best, model, generator, state)
        return False
    state.bad_validations += 1
    patience = tc.early_stopping_patience
    return bool(patience and state.bad_validations >= patience)
