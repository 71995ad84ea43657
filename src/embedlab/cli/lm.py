"""``embedlab lm train | evaluate | export``: LSTM language models (Zaremba et al. 2014) on token
corpora."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from embedlab.cli.npz import write_npz
from embedlab.config.io import build_typed_config
from embedlab.distributed import is_main_process
from embedlab.errors import UserError
from embedlab.lm.config import LmConfig
from embedlab.lm.data import batchify
from embedlab.lm.load import load_run
from embedlab.lm.objective import evaluate_stream
from embedlab.lm.predictor import LmPredictor
from embedlab.lm.run import train_lm

app = typer.Typer(help="Word-level LSTM language models (perplexity).", no_args_is_help=True)


def _line(split: str, m: dict) -> str:
    return (
        f"{split}: perplexity {m['perplexity']:.2f}  "
        f"(loss {m['loss']:.4f} nats, {m['tokens']:,} tokens)"
    )


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="run directory (created; resumed if it exists)"),
    config: Path | None = typer.Option(None, "--config", help="YAML config file"),
    dataset: str | None = typer.Option(
        None,
        help="ptb, or a directory with ptb.{train,valid,test}.txt or {train,valid,test}.txt",
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="override a config key, repeatable: --set train.max_epochs=2 "
        "--set token_embedding.sse.kind=se --set token_embedding.sse.p=0.01",
    ),
    overwrite: bool = typer.Option(False, help="delete an existing run directory first"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train an LSTM LM and report the perplexity of its best (valid) epoch on valid and test.

    Token and output tables are configured under token_embedding / output_embedding (lookup or
    KD codes, SSE, dropout); train.init_from=RUN_DIR distils the new tables from a trained LM run.
    Re-running on an existing --out with the same config resumes from checkpoints/last.
    """
    overrides = [f"dataset={dataset}"] if dataset else []
    cfg = build_typed_config(LmConfig, path=config, overrides=overrides + list(set_))
    metrics = train_lm(cfg, out, overwrite=overwrite, progress=progress)
    if not is_main_process():  # torchrun: rank 0 reports
        return
    typer.echo(_line("valid", metrics["valid"]))
    typer.echo(_line("test", metrics["test"]))
    timing = metrics["timing"]
    typer.echo(
        f"{timing['epochs']} epochs (best {metrics['best_epoch']}), median "
        f"{timing['epoch_seconds_median']:.1f} s/epoch, {timing['rows_per_s']:,.0f} tokens/s; "
        f"run directory: {out}"
    )


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="an LM run directory"),
    split: str = typer.Option("test", help="valid | test"),
) -> None:
    """Perplexity of a run's best checkpoint on one split (state carried over the whole split)."""
    if split not in ("valid", "test"):
        raise UserError(f"--split must be valid or test, got {split!r}")
    config, corpus, model = load_run(run_dir)
    data = batchify(corpus.splits[split], config.eval.batch_size)
    metrics = evaluate_stream(model, data, config.train.bptt)
    typer.echo(_line(split, metrics))
    typer.echo(json.dumps(metrics))


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="an LM run directory"),
    out: Path = typer.Argument(..., help="output .npz file"),
) -> None:
    """Write the token table and the vocabulary to an .npz file.

    Arrays: token_embeddings (V, embedding_dim), output_embeddings (V, hidden) (absent when the
    tables are tied), output_bias (V,), vocab (V,) (the word of each row).
    """
    e = LmPredictor.from_run(run_dir).embeddings()
    arrays = {
        "token_embeddings": e.tokens,
        "output_bias": e.output_bias,
        "vocab": np.array(e.vocab),
    }
    if e.output is not None:
        arrays["output_embeddings"] = e.output
    typer.echo(f"wrote {write_npz(out, arrays)}")
