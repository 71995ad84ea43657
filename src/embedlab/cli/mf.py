"""``embedlab mf train``: matrix-factorization recommenders with SSE, dropout, ALS, GRALS."""

from __future__ import annotations

from pathlib import Path

import typer

from embedlab.config.io import build_typed_config
from embedlab.distributed import is_main_process
from embedlab.recsys.config import MfConfig
from embedlab.recsys.run import train_mf

app = typer.Typer(
    help="Matrix-factorization rating prediction (RMSE, MAE; top-k ranking).", no_args_is_help=True
)


def _line(split: str, m: dict) -> str:
    line = f"{split}: RMSE {m['rmse']:.4f}  MAE {m['mae']:.4f}  ({m['num_ratings']:,} ratings)"
    ks = sorted(int(key.split("@")[1]) for key in m if key.startswith("ndcg@"))
    for k in ks:
        line += (
            f"\n{split}: P@{k} {m[f'precision@{k}']:.4f}  R@{k} {m[f'recall@{k}']:.4f}  "
            f"NDCG@{k} {m[f'ndcg@{k}']:.4f}  MAP@{k} {m[f'map@{k}']:.4f}"
        )
    if ks:
        line += f"  ({m['ranking_users']:,} users, {m['ranking_skipped_users']:,} skipped)"
    return line


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="run directory (created; resumed if it exists)"),
    config: Path | None = typer.Option(None, "--config", help="YAML config file"),
    dataset: str | None = typer.Option(
        None, help="ml-1m | ml-100k | douban, or a directory with train.tsv and test.tsv"
    ),
    method: str | None = typer.Option(None, help="sgd | als | grals"),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="override a config key, repeatable: --set train.lr=0.01 "
        "--set item_embedding.sse.kind=graph --set item_embedding.sse.p=0.01",
    ),
    overwrite: bool = typer.Option(False, help="delete an existing run directory first"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train an MF model (r = mu + b_u + b_i + <p_u, q_i>) and report test RMSE/MAE.

    SSE-SE / SSE-Graph and dropout are options of user_embedding / item_embedding (SGD only);
    graph sources: ml-1m user 'age', item 'kg' (shared actor/director/writer) or 'genre';
    ml-100k user 'age', item 'genre'; douban user 'social'. Re-running on an existing --out with
    the same config resumes from checkpoints/last.
    """
    overrides = [f"{k}={v}" for k, v in (("dataset", dataset), ("train.method", method)) if v]
    cfg = build_typed_config(MfConfig, path=config, overrides=overrides + list(set_))
    metrics = train_mf(cfg, out, overwrite=overwrite, progress=progress)
    if not is_main_process():  # torchrun: rank 0 reports
        return
    if "valid" in metrics:
        typer.echo(_line("valid", metrics["valid"]))
    typer.echo(_line("test", metrics["test"]))
    timing = metrics["timing"]
    typer.echo(
        f"{timing['epochs']} epochs, median {timing['epoch_seconds_median']:.3f} s/epoch; "
        f"run directory: {out}"
    )
