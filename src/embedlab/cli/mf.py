"""``embedlab mf train | recommend | fold-in | export``: matrix-factorization recommenders with
SSE, dropout, ALS, GRALS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from embedlab.cli.npz import write_npz
from embedlab.config.io import build_typed_config
from embedlab.datasets.rating_files import read_user_ratings
from embedlab.distributed import is_main_process
from embedlab.errors import UserError
from embedlab.recsys.config import MfConfig
from embedlab.recsys.recommend import MfPredictor, Recommendations
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


def _print_recommendations(recs: Recommendations, excluded: str) -> None:
    """The ranked items, then ``excluded N items <excluded>`` (unless nothing was excluded)."""
    for r in recs:
        typer.echo(f"{r.rank:3d}  {r.item}\t{r.score:.4f}")
    if recs.excluded_from:
        noun = "item" if recs.excluded == 1 else "items"
        typer.echo(f"excluded {recs.excluded} {noun} {excluded}")


@app.command()
def recommend(
    run_dir: Path = typer.Argument(..., help="an MF run directory"),
    user: str = typer.Option(..., help="user id as in the rating files"),
    top_k: int = typer.Option(10, min=1, help="number of items"),
    exclude_rated: bool = typer.Option(
        True, "--exclude-rated/--include-rated", help="leave out the items the user rated"
    ),
    exclude_splits: str = typer.Option("train", help="train, or all (train, valid and test)"),
) -> None:
    """Top-k items for USER by predicted rating (mu + b_u + b_i + <p_u, q_i>, unclipped),
    leaving out the items the user rated in training."""
    if exclude_splits not in ("train", "all"):
        raise UserError(f"--exclude-splits must be train or all, got {exclude_splits!r}")
    predictor = MfPredictor.from_run(run_dir)
    mode: bool | str = ("all" if exclude_splits == "all" else True) if exclude_rated else False
    recs = predictor.recommend(user, top_k, mode)
    _print_recommendations(recs, f"rated by user {user} ({', '.join(recs.excluded_from)})")


@app.command("fold-in")
def fold_in(
    run_dir: Path = typer.Argument(..., help="an MF run directory"),
    ratings: Path = typer.Option(..., help="the new user's ratings: item<TAB>rating per line"),
    top_k: int = typer.Option(10, min=1, help="number of items"),
) -> None:
    """Fit a NEW user's factor (and bias) from their ratings by one ALS half-step against the
    trained item table, with the run's regularization (no retraining), and print their top-k
    items, leaving out the items they rated."""
    predictor = MfPredictor.from_run(run_dir)
    lines = read_user_ratings(ratings)
    for lineno, item, _ in lines:
        try:
            predictor.items.id(item)
        except UserError as exc:
            raise UserError(f"{ratings}:{lineno}: {exc}") from None
    user = predictor.fold_in([(item, rating) for _, item, rating in lines])
    typer.echo(
        f"folded in a new user from {len(user.item_ids)} ratings: bias {user.bias:.4f}, "
        f"|factor| {float(np.linalg.norm(user.factor)):.4f}"
    )
    _print_recommendations(predictor.recommend(user, top_k), "the new user rated")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="an MF run directory"),
    out: Path = typer.Argument(..., help="output .npz file"),
) -> None:
    """Write the factor tables, biases, mean and id maps to an .npz file.

    Arrays: user_embeddings (U, d), item_embeddings (I, d), user_bias (U,), item_bias (I,),
    mean (), user_ids (U,), item_ids (I,) (raw ids as in the rating files).
    """
    e = MfPredictor.from_run(run_dir).embeddings()
    arrays = {
        "user_embeddings": e.users,
        "item_embeddings": e.items,
        "user_bias": e.user_bias,
        "item_bias": e.item_bias,
        "mean": np.array(e.mean),
        "user_ids": np.array(e.user_labels),
        "item_ids": np.array(e.item_labels),
    }
    typer.echo(f"wrote {write_npz(out, arrays)}")
