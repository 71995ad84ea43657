"""An LM run end to end: run directory, resumable truncated-BPTT training on the one loop
(:class:`~embedlab.lm.task.LmTask`), perplexity of the best checkpoint, metrics.json."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from embedlab.datasets.tokens import TokenCorpus, load_corpus
from embedlab.distributed import World, joined
from embedlab.embeddings import compression_report, set_training_progress
from embedlab.embeddings.kd_distill import distill_stage
from embedlab.errors import UserError
from embedlab.lm.config import LmConfig
from embedlab.lm.load import build_lm_model
from embedlab.lm.task import LmTask, TrainPerplexity, learning_rate
from embedlab.training.callbacks import ClipGradNorm, EpochLearningRate, TrainingProgress
from embedlab.training.device import resolve_device
from embedlab.training.loop import Loop
from embedlab.training.run_dir import (
    RunPaths,
    prepare_shared_run_dir,
    will_resume,
    with_absolute_paths,
)
from embedlab.training.run_lock import training_scope
from embedlab.training.trackers import build_trackers


def _check_sizes(config: LmConfig, corpus: TokenCorpus) -> None:
    train, evaluation = config.train.batch_size, config.eval.batch_size
    for split, batch in (("train", train), ("valid", evaluation), ("test", evaluation)):
        if corpus.num_tokens(split) < 2 * batch:
            raise UserError(
                f"{config.dataset}: the {split} split has {corpus.num_tokens(split)} tokens, "
                f"too few for {batch} streams of at least 2 tokens; lower the batch size"
            )


def train_lm(
    config: LmConfig, run_dir: Path, *, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume) an LM run in ``run_dir``, evaluate its best checkpoint, write metrics.

    Each epoch: one ordered truncated-BPTT pass over train at the epoch's lr
    (:func:`~embedlab.lm.task.learning_rate`), then valid perplexity; the best valid epoch is
    ``checkpoints/best``; ``train.early_stopping_patience`` > 0 stops after that many
    validations without gain. Re-running on an existing run directory with the same config
    resumes from ``checkpoints/last`` (``overwrite``: start again). ``metrics.json``:
    ``{"valid", "test"}`` (``perplexity``, ``loss``, ``tokens``, ``seconds``), ``"best_epoch"``,
    ``"timing"``, ``"compression"`` (``embedlab.embeddings.compression_report``, ``null`` where
    unavailable), ``"dataset"``.

    Under torchrun every process calls this: data-parallel training over the streams
    (:class:`~embedlab.lm.task.LmTask`).

    Raises:
        UserError: bad config / run-directory combinations, a corpus too small for the batch.
    """
    with joined(resolve_device(config.device)) as (world, device), training_scope(run_dir):
        return _train(
            config, run_dir, overwrite=overwrite, progress=progress, world=world, device=device
        )


def _train(
    config: LmConfig,
    run_dir: Path,
    *,
    overwrite: bool,
    progress: bool,
    world: World,
    device: torch.device,
) -> dict[str, Any]:
    start = time.perf_counter()
    config = with_absolute_paths(config)
    tc = config.train
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    corpus = load_corpus(config.dataset)
    _check_sizes(config, corpus)
    # a run resumed from checkpoints/last finds the KD teachers there: init_from is not read
    fresh = not will_resume(run_dir, overwrite=overwrite)
    torch.manual_seed(config.seed)  # before the weights are initialized
    model = build_lm_model(config, corpus, with_teachers=fresh).to(device)
    # only a config that builds is written
    prepare_shared_run_dir(run_dir, config, overwrite=overwrite, world=world)
    task = LmTask(model=model, corpus=corpus, config=config, world=world)
    callbacks = [
        EpochLearningRate(lambda epoch: learning_rate(tc, epoch)),
        TrainingProgress(set_training_progress),
        TrainPerplexity(),
    ]
    if tc.clip is not None:
        callbacks.append(ClipGradNorm(tc.clip))
    callbacks += build_trackers(config.tracker, RunPaths(run_dir), is_main=world.is_main)
    loop = Loop(
        task=task,
        config=tc,
        eval_every=config.eval.every,
        paths=RunPaths(run_dir),
        device=device,
        callbacks=callbacks,
        progress=progress,
        world=world,
    )
    # a resumed run's tables come from its checkpoint; its distillation errors from its trace
    distilled = distill_stage(model, seed=config.seed, trace=loop.trace, resuming=not fresh)
    loop.run(seed=config.seed, start_fields={"vocab": corpus.vocab_size})
    extra = {
        "compression": compression_report(model, distilled),
        "dataset": {
            "name": corpus.name,
            "vocab": corpus.vocab_size,
            "tokens": {split: corpus.num_tokens(split) for split in corpus.splits},
        },
    }
    return loop.finish(
        evaluate=task.evaluate, splits=("valid", "test"), extra=extra, wall_start=start
    )
