"""An LM run end to end: run directory, resumable truncated-BPTT training, perplexity, metrics.

``training.loop.Loop`` is built around a KGE ``TrainConfig`` (Adam/Adagrad, ReduceLROnPlateau on
a higher-is-better metric, shuffled independent batches); an LM epoch is one ordered pass with
the LSTM state carried across windows and Zaremba's fixed lr schedule, so this module runs its own
epoch loop (as ``recsys/run.py`` does) on the shared checkpoint, run-directory and trace modules.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from embedlab.datasets.tokens import TokenCorpus, load_corpus
from embedlab.embeddings import compression_report, set_training_progress
from embedlab.embeddings.kd_distill import distill_stage
from embedlab.errors import UserError
from embedlab.lm.config import LmConfig, LmTrainConfig
from embedlab.lm.data import batchify, detach_state, num_windows, windows
from embedlab.lm.load import build_lm_model, resolved
from embedlab.lm.model import LstmLm, State
from embedlab.lm.objective import evaluate_stream, perplexity, window_loss
from embedlab.training.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from embedlab.training.loop import RunPaths, rng_state
from embedlab.training.run_dir import prepare_run_dir
from embedlab.training.trace import Trace


@dataclass
class LmState:
    """What a resumed LM run continues from (stored in the checkpoint's JSON state)."""

    epoch: int = 0
    best_loss: float | None = None  # best valid mean NLL
    best_epoch: int = 0
    seconds: float = 0.0  # training + validation (what train.max_minutes bounds)
    epoch_seconds: list[float] = field(default_factory=list)  # training steps only
    tokens: int = 0
    stop_reason: str | None = None


@dataclass
class EpochResult:
    nll: float  # mean token NLL over the epoch's windows
    tokens: int
    windows: int
    seconds: float
    over_budget: bool


def learning_rate(tc: LmTrainConfig, epoch: int) -> float:
    """The lr of 1-based ``epoch``: ``lr * lr_decay ** max(0, epoch - decay_after)``."""
    return tc.lr * tc.lr_decay ** max(0, epoch - tc.decay_after)


def train_epoch(
    model: LstmLm,
    optimizer: torch.optim.Optimizer,
    data: torch.Tensor,
    *,
    config: LmConfig,
    epoch: int,
    budget_seconds: float | None = None,
    progress: bool = True,
) -> EpochResult:
    """One ordered pass over ``data (B, T)`` (0-based ``epoch``) from a zero state.

    Stops early after ``train.max_batches`` windows, or as soon as ``budget_seconds`` of this
    epoch's training time are spent.
    """
    tc = config.train
    total = num_windows(data.shape[1], tc.bptt)
    if tc.max_batches is not None:
        total = min(total, tc.max_batches)
    model.train()
    state: State | None = None
    nll, tokens, done, over = 0.0, 0, 0, False
    start = time.perf_counter()
    bar = tqdm(
        total=total, desc=f"epoch {epoch + 1}", unit="batch", leave=False, disable=not progress
    )
    with bar:
        for inputs, targets in windows(data, tc.bptt):
            if done == total:
                break
            set_training_progress(model, epoch + done / total)
            optimizer.zero_grad(set_to_none=True)
            step = window_loss(model, inputs, targets, state)
            step.loss.backward()
            if tc.clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip)
            optimizer.step()
            state = detach_state(step.state)
            nll, tokens, done = nll + step.nll_sum, tokens + step.tokens, done + 1
            elapsed = time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(ppl=f"{perplexity(nll / tokens):.1f}", tok_s=f"{tokens / elapsed:.0f}")
            if budget_seconds is not None and elapsed >= budget_seconds:
                over = True
                break
    seconds = time.perf_counter() - start
    return EpochResult(nll / max(1, tokens), tokens, done, seconds, over)


def _evaluate(model: LstmLm, corpus: TokenCorpus, split: str, config: LmConfig) -> dict[str, Any]:
    data = batchify(corpus.splits[split], config.eval.batch_size)
    start = time.perf_counter()
    metrics: dict[str, Any] = evaluate_stream(model, data, config.train.bptt)
    metrics["seconds"] = time.perf_counter() - start
    return metrics


def _check_sizes(config: LmConfig, corpus: TokenCorpus) -> None:
    train, evaluation = config.train.batch_size, config.eval.batch_size
    for split, batch in (("train", train), ("valid", evaluation), ("test", evaluation)):
        if corpus.num_tokens(split) < 2 * batch:
            raise UserError(
                f"{config.dataset}: the {split} split has {corpus.num_tokens(split)} tokens, "
                f"too few for {batch} streams of at least 2 tokens; lower the batch size"
            )


class _Run:
    """One run's moving parts: model, optimizer, data, counters, trace and checkpoints."""

    def __init__(
        self, *, config: LmConfig, corpus: TokenCorpus, run_dir: Path, progress: bool, fresh: bool
    ) -> None:
        self.config, self.corpus, self.progress = config, corpus, progress
        torch.manual_seed(config.seed)  # before the weights are initialized
        self.model = build_lm_model(config, corpus, with_teachers=fresh)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.train.lr)
        self.paths = RunPaths(run_dir)
        self.trace = Trace(self.paths.trace)
        self.generator = torch.Generator().manual_seed(config.seed)  # checkpointed RNG states
        self.state = LmState()
        self.distilled: dict[str, float] = {}  # table -> relative error after the PDG stage
        self.train = batchify(corpus.splits["train"], config.train.batch_size)  # (B, T)

    def save(self, path: Path) -> None:
        save_checkpoint(
            path,
            model=self.model,
            optimizer=self.optimizer,
            rng=rng_state(self.generator),
            state={"lm": asdict(self.state)},
        )

    def resume(self) -> None:
        """Restore model, optimizer, RNG states and counters from ``checkpoints/last``."""
        last = self.paths.last
        try:
            rng, saved = load_checkpoint(last, model=self.model, optimizer=self.optimizer)
            self.state = LmState(**saved["lm"])
        except (RuntimeError, TypeError, KeyError, ValueError) as exc:
            raise UserError(
                f"{last}.safetensors cannot be resumed with this config and dataset as resolved "
                f"now ({type(exc).__name__}); use --overwrite or another --out"
            ) from None
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["shuffle"])
        self.trace.write("resume", epoch=self.state.epoch, seconds=self.state.seconds)

    def distill(self) -> None:
        """PDG stage of every KD table with ``kd.distill_epochs > 0`` (a fresh run only)."""
        self.distilled = distill_stage(self.model, seed=self.config.seed, trace=self.trace)

    def budget_left(self) -> float | None:
        minutes = self.config.train.max_minutes
        return None if minutes is None else 60 * minutes - self.state.seconds

    def run_epoch(self) -> None:
        """Train one epoch, validate, update the counters, write trace and checkpoints."""
        config, state = self.config, self.state
        budget = self.budget_left()
        if budget is not None and budget <= 0:
            state.stop_reason = f"time budget of {config.train.max_minutes} min reached"
            return
        lr = learning_rate(config.train, state.epoch + 1)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        result = train_epoch(
            self.model,
            self.optimizer,
            self.train,
            config=config,
            epoch=state.epoch,
            budget_seconds=budget,
            progress=self.progress,
        )
        state.epoch += 1
        state.epoch_seconds.append(result.seconds)
        state.tokens += result.tokens
        valid = _evaluate(self.model, self.corpus, "valid", config)
        state.seconds += result.seconds + valid["seconds"]
        if result.over_budget:
            state.stop_reason = f"time budget of {config.train.max_minutes} min reached"
        self.trace.write(
            "epoch",
            epoch=state.epoch,
            lr=lr,
            loss=result.nll,
            train_perplexity=perplexity(result.nll),
            valid_perplexity=valid["perplexity"],
            valid_loss=valid["loss"],
            seconds=result.seconds,
            tokens=result.tokens,
            windows=result.windows,
            tokens_per_s=result.tokens / result.seconds if result.seconds else 0.0,
        )
        scores = {k: v for k, v in valid.items() if k != "seconds"}
        self.trace.write(
            "valid",
            epoch=state.epoch,
            seconds=state.seconds,  # cumulative (what `embedlab plot trace` draws against)
            eval_seconds=valid["seconds"],
            **scores,
        )
        if self.progress:
            tqdm.write(
                f"epoch {state.epoch:3d}  lr {lr:.4g}  train ppl {perplexity(result.nll):8.2f}  "
                f"valid ppl {valid['perplexity']:8.2f}  {result.seconds:.1f} s"
            )
        if state.best_loss is None or valid["loss"] < state.best_loss:
            state.best_loss, state.best_epoch = valid["loss"], state.epoch
            self.save(self.paths.best)
        last = state.epoch == config.train.max_epochs or state.stop_reason is not None
        if last or state.epoch % config.train.checkpoint_every == 0:
            self.save(self.paths.last)

    def finish(self) -> dict[str, Any]:
        """Evaluate the best checkpoint on valid and test; write ``metrics.json``."""
        state, model, corpus = self.state, self.model, self.corpus
        if not checkpoint_exists(self.paths.last):  # max_epochs 0: keep the initial model
            self.save(self.paths.last)
        if checkpoint_exists(self.paths.best):
            load_checkpoint(self.paths.best, model=model)
        metrics: dict[str, Any] = {
            split: _evaluate(model, corpus, split, self.config) for split in ("valid", "test")
        }
        train_seconds = sum(state.epoch_seconds)
        metrics["timing"] = {
            "epochs": state.epoch,
            "train_seconds": train_seconds,
            "train_and_valid_seconds": state.seconds,
            "epoch_seconds_median": statistics.median(state.epoch_seconds or [0.0]),
            "tokens": state.tokens,
            "tokens_per_s": state.tokens / train_seconds if train_seconds else 0.0,
            "stop_reason": state.stop_reason,
            "threads": torch.get_num_threads(),
        }
        metrics["best_epoch"] = state.best_epoch
        metrics["compression"] = compression_report(model, self.distilled)
        metrics["dataset"] = {
            "name": corpus.name,
            "vocab": corpus.vocab_size,
            "tokens": {split: corpus.num_tokens(split) for split in corpus.splits},
        }
        text = json.dumps(metrics, indent=1)
        (self.paths.root / "metrics.json").write_text(text, encoding="utf-8")
        self.trace.write("test", epoch=state.best_epoch, **metrics["test"])
        self.trace.write("stop", reason=state.stop_reason, epoch=state.epoch)
        return metrics


def train_lm(
    config: LmConfig, run_dir: Path, *, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume) an LM run in ``run_dir``, evaluate its best checkpoint, write metrics.

    Each epoch: one ordered truncated-BPTT pass over train at the epoch's lr
    (:func:`learning_rate`), then valid perplexity; the best valid epoch is ``checkpoints/best``.
    Re-running on an existing run directory with the same config resumes from
    ``checkpoints/last`` (``overwrite``: start again). ``metrics.json``: ``{"valid", "test"}``
    (``perplexity``, ``loss``, ``tokens``, ``seconds``), ``"timing"``, ``"best_epoch"``,
    ``"compression"`` (``embedlab.embeddings.compression_report``, ``null`` where unavailable),
    ``"dataset"``. The trace has one ``epoch`` event per epoch (lr, train/valid perplexity,
    seconds, tokens/s) and one ``valid`` event (cumulative seconds, for ``embedlab plot trace``).

    Raises:
        UserError: bad config / run-directory combinations, a corpus too small for the batch.
    """
    config = resolved(config)
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    corpus = load_corpus(config.dataset)
    _check_sizes(config, corpus)
    # a run resumed from checkpoints/last finds the KD teachers there: init_from is not read
    saved = (run_dir / "config.yaml").is_file() and checkpoint_exists(RunPaths(run_dir).last)
    fresh = overwrite or not saved
    run = _Run(config=config, corpus=corpus, run_dir=run_dir, progress=progress, fresh=fresh)
    resuming = prepare_run_dir(run_dir, config, overwrite=overwrite)  # only a config that builds
    if resuming and not fresh:
        run.resume()
    else:
        run.trace.write("start", seed=config.seed, vocab=corpus.vocab_size)
        run.distill()
    while run.state.stop_reason is None and run.state.epoch < config.train.max_epochs:
        run.run_epoch()
    if run.state.stop_reason is None:
        run.state.stop_reason = "max epochs reached"
    return run.finish()
