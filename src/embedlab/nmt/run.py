"""An NMT run end to end: run directory, joint vocabulary, resumable training on the one loop
(:class:`~embedlab.nmt.task.NmtTask`), checkpoint averaging, BLEU of the final model,
metrics.json and the test translations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from embedlab.datasets.parallel import ParallelSplit
from embedlab.distributed import World, joined
from embedlab.embeddings import compression_report, set_training_progress
from embedlab.errors import UserError
from embedlab.nmt.average import average_last, write_average
from embedlab.nmt.config import NmtConfig
from embedlab.nmt.data import EncodedSplit, encode, filter_long, load_splits
from embedlab.nmt.evaluate import evaluate_split
from embedlab.nmt.load import averaged_path, build_model
from embedlab.nmt.objective import InverseSqrtSchedule
from embedlab.nmt.task import EpochSnapshots, NmtTask
from embedlab.nmt.vocab import Vocabulary, run_vocabulary
from embedlab.training.callbacks import Callback, ClipGradNorm, TrainingProgress
from embedlab.training.device import resolve_device
from embedlab.training.loop import Loop
from embedlab.training.run_dir import RunPaths, prepare_shared_run_dir, with_absolute_paths
from embedlab.training.run_lock import training_scope
from embedlab.training.trackers import build_trackers

TRANSLATIONS = "translations"


def train_nmt(
    config: NmtConfig, run_dir: Path, *, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume) an NMT run in ``run_dir``, evaluate its final model, write metrics.

    The joint BPE vocabulary is trained on the training split (both languages) and saved as
    ``spm.model`` (a resumed run reuses it). Each epoch: the token-budget batches in a shuffled
    order under the inverse-sqrt schedule, a model snapshot (``checkpoints/epoch-NNNN``, the
    newest ``eval.average_last`` kept), then valid NLL and greedy BLEU. The final model is the
    average of the last ``eval.average_last`` snapshots (``checkpoints/averaged.safetensors``),
    or the best valid-loss checkpoint when that is 1. ``metrics.json``: ``{"valid", "test"}``
    (``loss``, ``perplexity``, ``tokens``, ``bleu``, ``sacrebleu_signature``, ``sentences``,
    ``beam``, ``seconds``), ``selected``, ``best_epoch``, ``timing``, ``compression``,
    ``dataset``; ``translations/{valid,test}.txt`` hold the detokenized translations.
    Re-running on an existing run directory with the same config resumes from
    ``checkpoints/last`` (``overwrite``: start again).

    Raises:
        UserError: bad config / run-directory combinations, missing data, torchrun.
    """
    with joined(resolve_device(config.device)) as (world, device), training_scope(run_dir):
        return _train(
            config, run_dir, overwrite=overwrite, progress=progress, world=world, device=device
        )


def _encoded(
    config: NmtConfig, run_dir: Path, raw: dict[str, ParallelSplit]
) -> tuple[Vocabulary, dict[str, EncodedSplit], int]:
    vocab = run_vocabulary(run_dir, raw["train"].source + raw["train"].target, config.data)
    splits = {name: encode(split, vocab) for name, split in raw.items()}
    splits["train"], dropped = filter_long(splits["train"], config.data.max_length)
    if not len(splits["train"]):
        raise UserError(f"no training pair has at most data.max_length={config.data.max_length}")
    return vocab, splits, dropped


def _train(
    config: NmtConfig,
    run_dir: Path,
    *,
    overwrite: bool,
    progress: bool,
    world: World,
    device: torch.device,
) -> dict[str, Any]:
    start = time.perf_counter()
    if world.parallel:
        raise UserError("nmt: data-parallel training is not implemented; run one process")
    config = with_absolute_paths(config)
    tc, ec = config.train, config.eval
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    raw = load_splits(config)  # missing data fails before a run directory is written
    prepare_shared_run_dir(run_dir, config, overwrite=overwrite, world=world)
    vocab, splits, dropped = _encoded(config, run_dir, raw)
    torch.manual_seed(config.seed)  # before the weights are initialized
    model = build_model(config, vocab).to(device)
    task = NmtTask(model=model, splits=splits, vocab=vocab, config=config)
    paths = RunPaths(run_dir)
    folder = paths.last.parent
    callbacks: list[Callback] = [
        InverseSqrtSchedule(
            lr=tc.lr, warmup_steps=tc.warmup_steps, batches_per_epoch=task.num_batches()
        ),
        TrainingProgress(set_training_progress),
    ]
    if ec.average_last > 1:
        callbacks.append(EpochSnapshots(folder, ec.average_last))
    if tc.clip is not None:
        callbacks.append(ClipGradNorm(tc.clip))
    callbacks += build_trackers(config.tracker, paths, is_main=world.is_main)
    loop = Loop(
        task=task, config=tc, eval_every=ec.every, paths=paths, device=device,
        callbacks=callbacks, progress=progress, world=world,
    )  # fmt: skip
    loop.run(seed=config.seed, start_fields={"vocab": len(vocab), "batches": task.num_batches()})
    selected: dict[str, Any] = {"checkpoint": "best"}

    def select(m: torch.nn.Module) -> None:
        averaged, chosen = average_last(folder, ec.average_last)
        write_average(averaged_path(run_dir), averaged)
        m.load_state_dict(load_file(str(averaged_path(run_dir)), device=str(device)))
        selected.update(checkpoint="averaged", epochs=[int(p.stem.split("-")[1]) for p in chosen])

    translations: dict[str, list[str]] = {}

    def evaluate(split: str) -> dict[str, Any]:
        metrics, translations[split] = evaluate_split(model, splits[split], vocab, ec, device)
        return metrics

    has_snapshots = ec.average_last > 1 and loop.state.epoch > 0
    extra = {
        "selected": selected,
        "compression": compression_report(model, {}),
        "dataset": {
            "name": config.dataset,
            "vocab": len(vocab),
            "pairs": {name: len(split) for name, split in splits.items()},
            "train_dropped_long": dropped,
        },
    }
    metrics = loop.finish(
        evaluate=evaluate, splits=("valid", "test"), extra=extra, wall_start=start,
        select=select if has_snapshots else None,
    )  # fmt: skip
    out = Path(run_dir) / TRANSLATIONS
    out.mkdir(exist_ok=True)
    for split, lines in translations.items():
        (out / f"{split}.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return metrics
