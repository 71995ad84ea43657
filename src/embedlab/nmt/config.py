"""Typed config of a Transformer NMT run (``embedlab nmt train``).

Defaults are a small Transformer for Multi30K (3 + 3 layers, d_model 256, 4 heads, FFN 1024,
dropout 0.1, label smoothing 0.1, Adam (0.9, 0.98) with the inverse-square-root warm-up) and the
decoding of the SSE paper's section 5.2 (beam 4, length penalty 0.6, average of the last 5
checkpoints). ``source_embedding`` / ``target_embedding`` are tables like every other
(``lookup`` or ``kd``, SSE, dropout).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from embedlab.config.base import StrictModel
from embedlab.embeddings.config import EmbeddingConfig, table_defaults
from embedlab.training.config import LoopConfig, LoopEvalConfig, RunConfig

TABLES = ("source_embedding", "target_embedding")


class NmtDataConfig(StrictModel):
    """Languages, split file prefixes and the joint SentencePiece vocabulary.

    A split is read from ``PREFIX.LANG.gz`` or ``PREFIX.LANG`` in the dataset directory (line i
    of the source file translates line i of the target file). ``vocab_size`` is the size of the
    joint BPE vocabulary trained on the training split of both languages (SentencePiece, ids
    0-3 are ``<pad> <unk> <s> </s>``); ``max_length`` drops training pairs with more subwords
    than that on either side (valid/test are never filtered).
    """

    source: str = Field(default="en", min_length=1, description="source language suffix")
    target: str = Field(default="de", min_length=1, description="target language suffix")
    train: str = "train"
    valid: str = "val"
    test: str = "test_2016_flickr"
    vocab_size: int = Field(default=8000, ge=16, description="joint BPE vocabulary size")
    character_coverage: float = Field(default=1.0, gt=0, le=1)
    max_length: int = Field(default=128, gt=0, description="subwords per training sentence")


class NmtModelConfig(StrictModel):
    """``nn.TransformerEncoder`` / ``nn.TransformerDecoder`` with sinusoidal positions.

    Token embeddings are scaled by ``sqrt(d_model)`` (Vaswani et al. 2017). ``norm_first``:
    pre-norm layers (OpenNMT-py, fairseq ``--*-normalize-before``) with a final layer norm.
    ``share_embeddings``: one table for source and target (the vocabulary is joint), configured
    by ``source_embedding``. ``tie_output``: the output projection is the target table's rows
    (``lookup_all()``, so composed rows for a KD table; no SSE, no dropout on it); otherwise a
    separate ``Linear(d_model, V)``.
    """

    d_model: int = Field(default=256, gt=0)
    heads: int = Field(default=4, gt=0)
    encoder_layers: int = Field(default=3, gt=0)
    decoder_layers: int = Field(default=3, gt=0)
    ffn: int = Field(default=1024, gt=0, description="feed-forward width")
    dropout: float = Field(default=0.1, ge=0, lt=1, description="attention, FFN, residual")
    norm_first: bool = True
    share_embeddings: bool = False
    tie_output: bool = True

    @model_validator(mode="after")
    def _heads_divide(self) -> Self:
        if self.d_model % self.heads:
            raise ValueError(f"model.d_model={self.d_model} is not divisible by heads={self.heads}")
        return self


class NmtTrainConfig(LoopConfig):
    """Token-budget batches, Adam and the inverse-square-root schedule.

    A batch holds sentence pairs of similar length (sorted by source then target length, cut
    where ``pairs * longest side`` would exceed ``max_tokens``); the batches are shuffled each
    epoch. The lr of (1-based) step ``s`` is ``lr * min(s / warmup_steps, sqrt(warmup_steps /
    s))`` (fairseq's ``inverse_sqrt``: linear warm-up to ``lr``, then ``∝ 1/sqrt(s)``). The loss
    is label-smoothed cross-entropy averaged over the batch's target tokens (padding ignored).
    """

    max_epochs: int = Field(default=30, ge=0)
    max_tokens: int = Field(default=4096, gt=0, description="padded tokens per batch")
    lr: float = Field(default=7e-4, gt=0, description="peak lr (after warm-up)")
    warmup_steps: int = Field(default=1000, gt=0)
    adam_betas: tuple[float, float] = (0.9, 0.98)
    adam_eps: float = Field(default=1e-9, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    clip: float | None = Field(default=None, gt=0, description="max global grad norm")
    max_batches: int | None = Field(default=None, gt=0, description="batches per epoch (tests)")


class NmtEvalConfig(LoopEvalConfig):
    """Validation each ``every`` epochs; decoding and BLEU of the final model.

    ``beam`` 1 is greedy decoding. ``length_penalty`` is GNMT's alpha (Wu et al. 2016, as
    OpenNMT-py): a finished hypothesis of ``n`` tokens (``</s>`` included) scores
    ``log p / ((5 + n) / 6) ** alpha``. At most ``max_len_a * source_length + max_len_b``
    tokens are generated (``</s>`` included; ``source_length`` counts the source subwords
    without ``</s>``). ``average_last``: the final model is the average of the last N epoch
    checkpoints (1: the best valid-loss checkpoint). ``valid_bleu_sentences``: greedy BLEU on
    the first N valid sentences in every valid event (0: off).
    """

    every: int = Field(default=1, gt=0, description="epochs between validations")
    max_tokens: int = Field(default=4096, gt=0, description="tokens per evaluation batch")
    beam: int = Field(default=4, gt=0)
    length_penalty: float = Field(default=0.6, ge=0)
    max_len_a: float = Field(default=1.0, ge=0)
    max_len_b: int = Field(default=50, gt=0)
    average_last: int = Field(default=5, gt=0, description="epoch checkpoints averaged")
    valid_bleu_sentences: int = Field(default=200, ge=0)


def nmt_table_defaults(data: Any) -> dict[str, dict[str, Any]]:
    """Tables start as N(0, d_model^-0.5) (fairseq's Transformer with scaled embeddings)."""
    d_model = 256
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        value = data["model"].get("d_model", d_model)
        d_model = value if isinstance(value, int) and value > 0 else d_model
    init = {"init": {"name": "normal", "scale": d_model**-0.5}}
    return {key: init for key in TABLES}


class NmtConfig(RunConfig):
    """The whole NMT run config."""

    dataset: str = "multi30k"
    data: NmtDataConfig = Field(default_factory=NmtDataConfig)
    model: NmtModelConfig = Field(default_factory=NmtModelConfig)
    train: NmtTrainConfig = Field(default_factory=NmtTrainConfig)
    eval: NmtEvalConfig = Field(default_factory=NmtEvalConfig)
    source_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    target_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)

    @model_validator(mode="before")
    @classmethod
    def _table_defaults(cls, data: Any) -> Any:
        return table_defaults(data, nmt_table_defaults(data))

    @model_validator(mode="after")
    def _tables(self) -> Self:
        """No sharding; SSE-Graph needs a graph (only ``surface_form`` is defined);
        a shared table is configured by ``source_embedding``."""
        for key in TABLES:
            table: EmbeddingConfig = getattr(self, key)
            if table.sharding != "none":
                raise ValueError(f"{key}.sharding: sharding is implemented for KGE entity tables")
            graph = table.sse.graph
            if table.sse.kind == "graph" and graph not in (None, "surface_form"):
                raise ValueError(
                    f"{key}.sse.graph={graph!r}: the NMT vocabulary graph is surface_form"
                )
        if self.model.share_embeddings:
            default = EmbeddingConfig.model_validate(nmt_table_defaults(
                self.model_dump())["target_embedding"])  # fmt: skip
            if self.target_embedding not in (default, self.source_embedding):
                raise ValueError(
                    "model.share_embeddings: the shared table is configured by "
                    "source_embedding; leave target_embedding at its default"
                )
        return self

    @model_validator(mode="after")
    def _lengths_fit_budget(self) -> Self:
        if self.data.max_length + 1 > self.train.max_tokens:
            raise ValueError(
                f"data.max_length={self.data.max_length} (+1 for </s>) exceeds "
                f"train.max_tokens={self.train.max_tokens}: such a sentence fits no batch"
            )
        return self


Split = Literal["train", "valid", "test"]
