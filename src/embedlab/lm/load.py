"""Building an LM for a config, and reading trained LM run directories (evaluate, teachers)."""

from __future__ import annotations

from pathlib import Path

import torch

from embedlab.datasets.tokens import TokenCorpus, load_corpus
from embedlab.embeddings.kd_distill import require_teacher_run
from embedlab.errors import UserError
from embedlab.lm.config import LmConfig
from embedlab.lm.model import LstmLm
from embedlab.training.run_dir import load_trained, read_run_config


def build_lm_model(config: LmConfig, corpus: TokenCorpus, *, with_teachers: bool) -> LstmLm:
    """The model of ``config`` over ``corpus``'s vocabulary, initialized from the global torch RNG.

    ``with_teachers``: pass the tables of ``train.init_from`` (:func:`teacher_tables`) to the
    layers; leave it False where a checkpoint will be loaded (a KD layer keeps its teacher as a
    buffer, so the teacher run is not needed to resume or evaluate).

    Raises:
        UserError: see :func:`teacher_tables`; a KD table with ``guidance: pdg`` but no
            ``train.init_from``, or ``init_from`` where no table has ``guidance: pdg``.
    """
    pdg = pdg_tables(config)
    require_teacher_run(pdg, config.train.init_from)
    if config.train.init_from and not pdg:
        raise UserError(
            f"train.init_from={config.train.init_from}: no table uses it; an LM run passes its "
            "tables only as the pre-trained table of kind=kd with kd.guidance=pdg"
        )
    token_teacher, output_teacher = (
        teacher_tables(config, corpus) if with_teachers else (None, None)
    )
    return LstmLm(
        vocab_size=corpus.vocab_size,
        config=config,
        token_teacher=token_teacher,
        output_teacher=output_teacher,
    )


def pdg_tables(config: LmConfig) -> list[str]:
    """Names of the tables that are KD codes with pre-trained distillation guidance."""
    tables = {"token_embedding": config.token_embedding}
    if not config.model.tie_weights:
        tables["output_embedding"] = config.output_embedding
    return [n for n, t in tables.items() if t.kind == "kd" and t.kd.guidance == "pdg"]


def load_run(
    run_dir: Path, corpus: TokenCorpus | None = None
) -> tuple[LmConfig, TokenCorpus, LstmLm]:
    """Config, corpus and the best (else last) model of an LM run directory, in eval mode.

    Args:
        corpus: the corpus already loaded for the run's dataset (read again when ``None`` or
            when it is another dataset).

    Raises:
        UserError: not an LM run directory, no checkpoint yet, or a checkpoint that does not fit
            the corpus as resolved now.
    """
    config = read_run_config(run_dir, LmConfig)
    if corpus is None or corpus.name != config.dataset:
        corpus = load_corpus(config.dataset)
    model = build_lm_model(config, corpus, with_teachers=False)  # teachers: in the checkpoint
    load_trained(run_dir, model, fits=f"dataset {config.dataset!r} ({corpus.vocab_size} words)")
    model.eval()
    return config, corpus, model


def teacher_tables(
    config: LmConfig, corpus: TokenCorpus
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The distillation teachers of ``train.init_from``: that run's best token table
    ``(V, embedding_dim)``, and its output table ``(V, hidden)`` when ``output_embedding.kind``
    is ``kd`` (else ``None``); composed rows where that run's tables are KD codes themselves.
    ``(None, None)`` without ``init_from``.

    Raises:
        UserError: ``init_from`` is not an LM run, or its vocabulary or widths differ.
    """
    source = config.train.init_from
    if not source:
        return None, None
    src_config, src_corpus, src_model = load_run(Path(source), corpus)
    if src_corpus.vocab != corpus.vocab:
        raise UserError(
            f"train.init_from={source}: trained on {src_config.dataset!r} "
            f"({src_corpus.vocab_size} words), whose vocabulary differs from {config.dataset!r} "
            f"({corpus.vocab_size} words)"
        )
    mc, src_mc = config.model, src_config.model
    if src_mc.embedding_dim != mc.embedding_dim:
        raise UserError(
            f"train.init_from={source}: its token table is {src_mc.embedding_dim} wide, "
            f"model.embedding_dim is {mc.embedding_dim}"
        )
    wants_output = config.output_embedding.kind == "kd" and not mc.tie_weights
    if wants_output and src_mc.hidden != mc.hidden:
        raise UserError(
            f"train.init_from={source}: its output table is {src_mc.hidden} wide, "
            f"model.hidden is {mc.hidden}"
        )
    with torch.no_grad():
        token = src_model.input_layer().all().detach().clone()  # (V, embedding_dim)
        output = src_model.output_layer().all().detach().clone() if wants_output else None
    return token, output
