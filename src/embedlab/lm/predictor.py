"""A trained LM run's tables with its vocabulary (:func:`embedlab.load_run` for LM runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from embedlab.datasets.tokens import TokenCorpus
from embedlab.lm.config import LmConfig
from embedlab.lm.load import load_run
from embedlab.lm.model import LstmLm


@dataclass(frozen=True)
class LmEmbeddings:
    """``tokens (V, embedding_dim)``: the input table; ``output (V, hidden)``: the softmax table
    (``None`` when tied to ``tokens``); ``output_bias (V,)``; ``vocab``: the word of each row.
    KD-code tables are composed (eval mode, hard codes)."""

    tokens: np.ndarray
    output: np.ndarray | None
    output_bias: np.ndarray
    vocab: list[str]


class LmPredictor:
    """A trained LSTM LM run.

    Args:
        config, corpus, model: as :func:`embedlab.lm.load.load_run` returns them (eval mode).
    """

    def __init__(self, *, config: LmConfig, corpus: TokenCorpus, model: LstmLm) -> None:
        self.config, self.corpus, self.model = config, corpus, model.eval()

    @classmethod
    def from_run(cls, run_dir: Path) -> LmPredictor:
        """The best (else last) checkpoint of an LM run directory.

        Raises:
            UserError: see :func:`embedlab.lm.load.load_run`.
        """
        config, corpus, model = load_run(Path(run_dir))
        return cls(config=config, corpus=corpus, model=model)

    @torch.no_grad()
    def embeddings(self) -> LmEmbeddings:
        """The token table (and untied output table) with the vocabulary."""
        m = self.model
        output = None if m.tied else m.output_layer().lookup_all().numpy().copy()
        return LmEmbeddings(
            tokens=m.input_layer().lookup_all().numpy().copy(),
            output=output,
            output_bias=m.bias.detach().numpy().copy(),
            vocab=list(self.corpus.vocab),
        )
