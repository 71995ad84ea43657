"""Typed config of a language-model run (``embedlab lm train``).

Defaults are Zaremba et al.'s *small* model (2 x 200 LSTM, no dropout, 13 epochs, SGD lr 1
halved every epoch after the 4th, BPTT 20, batch 20, grad-norm clip 5, all weights U(-0.1, 0.1)).
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, model_validator

from embedlab.config.base import StrictModel
from embedlab.embeddings.config import EmbeddingConfig, table_defaults
from embedlab.training.config import LoopConfig, LoopEvalConfig, RunConfig

#: Tables start as U(-0.1, 0.1), as every weight of Zaremba et al.'s model; keys the user sets
#: are merged over it (``--set token_embedding.sse.kind=se`` keeps this initializer).
LM_TABLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "token_embedding": {"init": {"name": "uniform", "scale": 0.1}},
    "output_embedding": {"init": {"name": "uniform", "scale": 0.1}},
}


class LmModelConfig(StrictModel):
    """``logits = h_t @ E_out.T + b`` over an ``layers``-deep LSTM on the token embeddings.

    ``dropout`` is Zaremba et al.'s non-recurrent dropout: on the token embeddings, between LSTM
    layers and on the last layer's output (a table's own ``dropout`` acts before it, inside the
    embedding layer). ``init_scale`` bounds U(-a, a) for the LSTM weights and biases and the output
    bias; the tables use their own ``init``. ``tie_weights`` uses one table for input and output
    (Press & Wolf 2017; needs ``embedding_dim == hidden``), configured by ``token_embedding``.
    """

    embedding_dim: int = Field(default=200, gt=0, description="width of a token embedding")
    hidden: int = Field(default=200, gt=0, description="LSTM width (= output-embedding width)")
    layers: int = Field(default=2, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1, description="non-recurrent dropout")
    init_scale: float = Field(default=0.1, gt=0, description="U(-a, a) of LSTM and output bias")
    tie_weights: bool = False


class LmTrainConfig(LoopConfig):
    """Truncated-BPTT SGD (Zaremba et al.).

    The loss of a window is the token NLL summed over its time steps and averaged over the batch
    (Zaremba's Torch code and TensorFlow's PTB tutorial), plus the tables' penalties. The learning
    rate of (1-based) epoch ``e`` is ``lr * lr_decay ** max(0, e - decay_after)``; gradients are
    rescaled to global norm ``clip`` (``None``: no clipping). ``max_batches`` caps the windows per
    epoch (smoke tests, timing). ``init_from`` names a trained LM run whose best token table (and
    output table, when ``output_embedding.kind`` is ``kd``) is passed to the new tables as the
    pre-trained table of KD's distillation guidance (``kd.guidance: pdg``, which needs it); no
    other weight is copied, and a run without such a table refuses ``init_from``.
    """

    batch_size: int = Field(default=20, gt=0, description="parallel token streams")
    bptt: int = Field(default=20, gt=0, description="unrolled time steps per window")
    max_epochs: int = Field(default=13, ge=0)
    lr: float = Field(default=1.0, gt=0)
    lr_decay: float = Field(
        default=0.5, gt=0, le=1, description="factor per epoch after decay_after"
    )
    decay_after: int = Field(default=4, ge=0, description="epochs at the initial lr")
    clip: float | None = Field(default=5.0, gt=0, description="max global grad norm")
    max_batches: int | None = Field(default=None, gt=0, description="windows per epoch (tests)")
    init_from: str | None = Field(
        default=None, description="LM run directory whose tables are the distillation teachers"
    )


class LmEvalConfig(LoopEvalConfig):
    every: int = Field(default=1, gt=0, description="epochs between validations")
    batch_size: int = Field(default=10, gt=0, description="parallel streams of valid/test")


class LmConfig(RunConfig):
    """The whole LM run config (ARCHITECTURE.md: ``token_embedding`` / ``output_embedding``)."""

    dataset: str = "ptb"
    model: LmModelConfig = Field(default_factory=LmModelConfig)
    train: LmTrainConfig = Field(default_factory=LmTrainConfig)
    eval: LmEvalConfig = Field(default_factory=LmEvalConfig)
    token_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    output_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)

    @model_validator(mode="before")
    @classmethod
    def _table_defaults(cls, data: Any) -> Any:
        return table_defaults(data, LM_TABLE_DEFAULTS)

    @model_validator(mode="after")
    def _no_sse_graph(self) -> Self:
        """SSE-Graph needs a graph over the rows; none is defined over an LM vocabulary."""
        for key in ("token_embedding", "output_embedding"):
            if getattr(self, key).sse.kind == "graph":
                raise ValueError(
                    f"{key}.sse.kind=graph: no graph over the vocabulary is defined for LM "
                    "tables; use sse.kind=se"
                )
        return self

    @model_validator(mode="after")
    def _no_sharding(self) -> Self:
        """Row-wise sharded tables (TorchRec) are built for KGE entity tables only."""
        for key in ("token_embedding", "output_embedding"):
            if getattr(self, key).sharding != "none":
                raise ValueError(
                    f"{key}.sharding={getattr(self, key).sharding}: sharding is implemented for "
                    "KGE entity tables"
                )
        return self

    @model_validator(mode="after")
    def _tied_tables(self) -> Self:
        """``tie_weights`` needs equal widths; ``output_embedding`` must then be left alone."""
        if not self.model.tie_weights:
            return self
        if self.model.embedding_dim != self.model.hidden:
            raise ValueError(
                f"model.tie_weights needs model.embedding_dim ({self.model.embedding_dim}) == "
                f"model.hidden ({self.model.hidden})"
            )
        default = EmbeddingConfig.model_validate(LM_TABLE_DEFAULTS["output_embedding"])
        if self.output_embedding not in (default, self.token_embedding):
            raise ValueError(
                "model.tie_weights: the shared table is configured by token_embedding; leave "
                "output_embedding at its default"
            )
        return self
