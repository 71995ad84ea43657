"""``embedlab theory objective | bregman | kl``: the numbers and figures of paper 002's theory."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
import typer

from embedlab.errors import UserError
from embedlab.losses.kl import DEFAULT_EPSILON, dataset_kl, figure2
from embedlab.losses.theory import (
    OBJECTIVE_LOSSES,
    figure1,
    objective_distribution,
    sans_fixed_point,
)

app = typer.Typer(
    help="Theory of Kamigaito & Hayashi (2021): objective distributions (table 1), "
    "Bregman divergences (figure 1), train/test KL of KG datasets (figure 2).",
    no_args_is_help=True,
)


def _parse_row(name: str, text: str) -> torch.Tensor:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{name} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise UserError(f"{name} is empty")
    return torch.tensor(values, dtype=torch.float64)


@app.command()
def objective(
    loss: str = typer.Option(
        "all", "--loss", help=f"one of {', '.join(OBJECTIVE_LOSSES)}, or 'all' for every row"
    ),
    p_d: str = typer.Option(
        ..., "--p-d", help="data distribution p_d(y|x) of one query, comma-separated, sums to 1"
    ),
    p_n: str | None = typer.Option(
        None,
        "--p-n",
        help="noise p_n(y|x) for ns_freq / sce_bc, comma-separated, > 0, sums to 1 "
        "(default: uniform, which gives p_d by Prop. 5)",
    ),
    lam: float = typer.Option(0.3, "--lam", help="smoothing weight λ of sans / sce_ls, in [0, 1]"),
    alpha: float | None = typer.Option(
        None, "--alpha", help="also print SANS's exact fixed point p_d^(1/(1+α)) (not in the paper)"
    ),
) -> None:
    """Print the objective distribution p_θ(y|x) of each loss at its optimum (table 1)."""
    if loss != "all" and loss not in OBJECTIVE_LOSSES:
        raise UserError(f"unknown loss {loss!r}; expected 'all' or one of {OBJECTIVE_LOSSES}")
    pd = _parse_row("--p-d", p_d)
    pn = _parse_row("--p-n", p_n) if p_n is not None else torch.full_like(pd, 1.0 / len(pd))
    losses = OBJECTIVE_LOSSES if loss == "all" else (loss,)
    try:
        rows = {name: objective_distribution(name, pd, p_n=pn, lam=lam) for name in losses}
        if alpha is not None:
            rows[f"sans α={alpha:g}"] = sans_fixed_point(pd, alpha=alpha)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    width = max(len(k) for k in ["p_d", "p_n", *rows])
    typer.echo(f"{'p_d':{width}s}  " + "  ".join(f"{v:.4f}" for v in pd.tolist()))
    if any(n in ("ns_freq", "sce_bc") for n in losses):
        typer.echo(f"{'p_n':{width}s}  " + "  ".join(f"{v:.4f}" for v in pn.tolist()))
    for name, row in rows.items():
        typer.echo(f"{name:{width}s}  " + "  ".join(f"{v:.4f}" for v in row.tolist()))


@app.command()
def bregman(
    out: Path = typer.Option(
        Path("docs/img/theory-figure1-bregman.png"), "--out", help="output PNG"
    ),
    target: float = typer.Option(0.5, help="fixed first argument f of d_Ψ(f, p), in (0, 1)"),
) -> None:
    """Figure 1: Bregman divergence d_Ψ(0.5, p) of SCE's and NS's Ψ against p (eqs. 2, 7)."""
    try:
        typer.echo(f"wrote {figure1(out, target=target)}")
    except ValueError as exc:
        raise UserError(str(exc)) from None


@app.command()
def kl(
    dataset: list[str] = typer.Option(
        ..., "--dataset", help="KG dataset name or directory; repeat for several bars"
    ),
    out: Path | None = typer.Option(None, "--out", help="also write figure 2 as this PNG"),
    epsilon: float = typer.Option(
        DEFAULT_EPSILON, "--epsilon", help="smoothing Q_ε = (1-ε) Q + ε/|Y| of the test p(y|x)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print a JSON list instead of text"),
) -> None:
    """Figure 2: KL divergence D_KL(P||Q) of p(y|x) between training (P) and test (Q) triples.

    §5.2: p(e_i|r_k, e_j) ∝ p(e_i|r_k) + p(e_j|e_i) (and the same for tails) from counts.

    Every choice made is listed in embedlab.losses.kl.kl_train_test.
    """
    if not 0.0 < epsilon < 1.0:
        raise UserError(f"--epsilon must be in (0, 1), got {epsilon}")
    results = [dataset_kl(name, epsilon=epsilon) for name in dataset]
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in results], indent=2))
    else:
        for r in results:
            typer.echo(
                f"{r.dataset}: KL(P||Q) = {r.kl:.4f} nats (head {r.kl_head:.4f}, "
                f"tail {r.kl_tail:.4f}; {r.queries:,} test queries, {r.skipped} skipped, "
                f"ε = {r.epsilon:g})"
            )
    if out is not None:
        typer.echo(f"wrote {figure2(results, out)}", err=as_json)
