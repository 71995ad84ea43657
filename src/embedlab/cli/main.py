"""Entry point ``embedlab``: user errors exit with code 2 and a message, never a traceback."""

from __future__ import annotations

import sys

import typer

from embedlab.cli import datasets, gcn, kge, lm, mf, nmt, plot, theory
from embedlab.cli.tune import tune
from embedlab.errors import UserError

app = typer.Typer(
    help="embedlab: learn, regularize and compress embedding tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(kge.app, name="kge")
app.add_typer(mf.app, name="mf")
app.add_typer(lm.app, name="lm")
app.add_typer(nmt.app, name="nmt")
app.add_typer(gcn.app, name="gcn")
app.add_typer(datasets.app, name="datasets")
app.add_typer(plot.app, name="plot")
app.add_typer(theory.app, name="theory")
app.command(name="tune")(tune)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 2 user error)."""
    try:
        code = app(args=argv, standalone_mode=False)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # usage errors (unknown option, missing argument)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
