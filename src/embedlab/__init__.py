"""embedlab: learning, regularizing and compressing embedding tables.

Task families: knowledge-graph link prediction (:mod:`embedlab.kge`), matrix-factorization
recommenders (:mod:`embedlab.recsys`) and LSTM language models (:mod:`embedlab.lm`). See the
README for the command-line interface; :func:`load_run` reads a trained run back for predictions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from embedlab.runs import Predictor

__version__ = "0.1.0"
__all__ = ["__version__", "load_run"]


def load_run(run_dir: str | Path, *, device: torch.device | str = "cpu") -> Predictor:
    """The predictor of a trained run directory (KGE, MF, LM or NMT), from its best (else last)
    checkpoint: see :func:`embedlab.runs.load_run`.

    ``import embedlab`` stays light: the task code (and torch) is imported on the first call.

    Raises:
        UserError: not a run directory, no checkpoint yet, a dataset that no longer fits it.
    """
    from embedlab.runs import load_run as load

    return load(run_dir, device=device)
