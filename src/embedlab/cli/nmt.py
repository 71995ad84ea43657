"""``embedlab nmt train | evaluate | translate``: Transformer NMT (SSE paper, section 5.2)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from embedlab.config.io import build_typed_config
from embedlab.errors import UserError
from embedlab.nmt.config import NmtConfig
from embedlab.nmt.data import encode, load_splits
from embedlab.nmt.evaluate import evaluate_split
from embedlab.nmt.run import train_nmt
from embedlab.nmt.translator import NmtTranslator

app = typer.Typer(help="Transformer NMT (BLEU, SSE-SE on both tables).", no_args_is_help=True)


def _line(split: str, m: dict) -> str:
    return (
        f"{split}: BLEU {m['bleu']:.2f}  (loss {m['loss']:.4f} nats/token, beam {m['beam']}, "
        f"{m['sentences']:,} sentences)  {m['sacrebleu_signature']}"
    )


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="run directory (created; resumed if it exists)"),
    config: Path | None = typer.Option(None, "--config", help="YAML config file"),
    dataset: str | None = typer.Option(
        None, help="multi30k, or a directory of PREFIX.LANG(.gz) sentence files"
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="override a config key, repeatable: --set train.max_epochs=2 "
        "--set source_embedding.sse.kind=se --set source_embedding.sse.p=0.01",
    ),
    overwrite: bool = typer.Option(False, help="delete an existing run directory first"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train a Transformer and report the BLEU of its final model on valid and test.

    Source and target tables are configured under source_embedding / target_embedding (lookup
    or KD codes, SSE, dropout). Re-running on an existing --out with the same config resumes
    from checkpoints/last.
    """
    overrides = [f"dataset={dataset}"] if dataset else []
    cfg = build_typed_config(NmtConfig, path=config, overrides=overrides + list(set_))
    metrics = train_nmt(cfg, out, overwrite=overwrite, progress=progress)
    typer.echo(_line("valid", metrics["valid"]))
    typer.echo(_line("test", metrics["test"]))
    timing = metrics["timing"]
    typer.echo(
        f"{timing['epochs']} epochs, final model: {metrics['selected']['checkpoint']}, median "
        f"{timing['epoch_seconds_median']:.1f} s/epoch, {timing['rows_per_s']:,.0f} target "
        f"tokens/s; run directory: {out}"
    )


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="an NMT run directory"),
    split: str = typer.Option("test", help="valid | test"),
    beam: int | None = typer.Option(None, min=1, help="beam width (default: eval.beam)"),
) -> None:
    """Loss and BLEU of a run's final model (averaged, else best) on one split."""
    if split not in ("valid", "test"):
        raise UserError(f"--split must be valid or test, got {split!r}")
    translator = NmtTranslator.from_run(run_dir)
    config = translator.config
    ec = config.eval if beam is None else config.eval.model_copy(update={"beam": beam})
    data = encode(load_splits(config)[split], translator.vocab)
    metrics, _ = evaluate_split(translator.model, data, translator.vocab, ec, translator.device)
    typer.echo(_line(split, metrics))
    typer.echo(json.dumps(metrics))


@app.command()
def translate(
    run_dir: Path = typer.Argument(..., help="an NMT run directory"),
    input_: Path = typer.Option(..., "--input", help="source sentences, one a line (or .gz)"),
    beam: int | None = typer.Option(None, min=1, help="beam width (default: eval.beam)"),
) -> None:
    """Print the translation of every line of --input, one a line (blank lines stay blank)."""
    if not input_.is_file():
        raise UserError(f"--input {input_}: no such file")
    for line in NmtTranslator.from_run(run_dir).translate_file(input_, beam=beam):
        typer.echo(line)
