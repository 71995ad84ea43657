"""Building an NMT model for a config and vocabulary, and reading trained NMT run directories."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from embedlab.errors import UserError
from embedlab.nmt.config import TABLES, NmtConfig
from embedlab.nmt.model import TransformerNmt
from embedlab.nmt.vocab import VOCAB_FILE, Vocabulary, surface_form_graph
from embedlab.training.run_dir import RunPaths, load_trained, read_run_config


def averaged_path(run_dir: Path) -> Path:
    """``RUN_DIR/checkpoints/averaged.safetensors``: the mean of the last epoch snapshots."""
    return RunPaths(run_dir).root / "checkpoints" / "averaged.safetensors"


def build_model(config: NmtConfig, vocab: Vocabulary) -> TransformerNmt:
    """The model of ``config`` over ``vocab`` (initialized from the global torch RNG); a table
    with ``sse.kind: graph`` gets the surface-form graph of the vocabulary."""
    wants_graph = any(getattr(config, key).sse.kind == "graph" for key in TABLES)
    graph = surface_form_graph(vocab) if wants_graph else None
    return TransformerNmt(vocab_size=len(vocab), config=config, graph=graph)


def load_run(
    run_dir: Path, *, device: torch.device | str = "cpu"
) -> tuple[NmtConfig, Vocabulary, TransformerNmt]:
    """Config, vocabulary and the final model of an NMT run directory, in eval mode: the
    averaged checkpoint where there is one, else the best (else last) checkpoint.

    Raises:
        UserError: not an NMT run directory, no vocabulary or checkpoint yet, or a checkpoint
            that does not fit the config.
    """
    config = read_run_config(run_dir, NmtConfig)
    vocab = Vocabulary.load(Path(run_dir) / VOCAB_FILE)
    model = build_model(config, vocab)
    averaged = averaged_path(run_dir)
    if averaged.is_file():
        try:
            model.load_state_dict(load_file(str(averaged)))
        except RuntimeError as exc:
            raise UserError(f"{averaged} does not fit the run's config: {exc}") from None
    else:
        load_trained(run_dir, model, fits=f"vocabulary of {len(vocab)} pieces")
    return config, vocab, model.to(device).eval()
