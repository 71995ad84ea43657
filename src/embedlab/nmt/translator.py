"""A trained NMT run as a translator (:func:`embedlab.load_run` for NMT runs, ``embedlab nmt
translate``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from embedlab.datasets.parallel import read_sentences
from embedlab.nmt.config import NmtConfig
from embedlab.nmt.evaluate import translate_ids
from embedlab.nmt.load import load_run
from embedlab.nmt.model import TransformerNmt
from embedlab.nmt.vocab import Vocabulary


class NmtTranslator:
    """Translates raw source sentences with a run's final model (averaged, else best).

    Args:
        config, vocab, model: as :func:`embedlab.nmt.load.load_run` returns them (eval mode).
        device: where the model is.
    """

    def __init__(
        self,
        *,
        config: NmtConfig,
        vocab: Vocabulary,
        model: TransformerNmt,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config, self.vocab, self.model = config, vocab, model.eval()
        self.device = torch.device(device)

    @classmethod
    def from_run(cls, run_dir: Path, *, device: torch.device | str = "cpu") -> NmtTranslator:
        """Raises: UserError (see :func:`embedlab.nmt.load.load_run`)."""
        config, vocab, model = load_run(Path(run_dir), device=device)
        return cls(config=config, vocab=vocab, model=model, device=device)

    def translate(self, sentences: Sequence[str], *, beam: int | None = None) -> list[str]:
        """Detokenized translations, one per sentence, in order (decoding of ``eval``: beam,
        length penalty, max length; ``beam`` overrides the width, 1 is greedy). A blank
        sentence translates to an empty string."""
        ids = self.vocab.encode([s.strip() for s in sentences])
        todo = [i for i, s in enumerate(ids) if s]
        out = [""] * len(sentences)
        if not todo:
            return out
        hyps = translate_ids(
            self.model, [ids[i] for i in todo], self.config.eval, self.device, beam=beam
        )
        for i, hyp in zip(todo, hyps, strict=True):
            out[i] = self.vocab.decode(hyp)
        return out

    def translate_file(self, path: Path, *, beam: int | None = None) -> list[str]:
        """Translations of the lines of a (gzipped) UTF-8 file.

        Raises:
            DatasetError: a line that is not UTF-8 (file and line named).
        """
        return self.translate(read_sentences(path), beam=beam)
