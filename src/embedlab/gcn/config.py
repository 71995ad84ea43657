"""Typed config of a GCN node-classification run (``embedlab gcn train``).

Defaults are Kipf & Welling's Cora recipe (ICLR 2017, section 5.2 and ``tkipf/gcn``): two
layers, 16 hidden units, dropout 0.5 on both layers' inputs, L2 weight decay 5e-4 on the first
layer, Adam at lr 0.01, at most 200 epochs, early stopping on the validation loss with patience
10. The KD supplement (paper 003, section 3, eq. 2-3) learns the node matrix ``X`` itself: with
``model.features: embedding`` ``X`` is the ``node_embedding`` table (a lookup table or KD codes),
with ``both`` it is concatenated to the bag-of-words features.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from embedlab.config.base import StrictModel
from embedlab.embeddings.config import EmbeddingConfig, table_defaults
from embedlab.training.config import LoopConfig, LoopEvalConfig, RunConfig

#: The learned node table starts as N(0, 0.1^2) per entry (row norm about 1 at width 128, the
#: scale of the row-normalized features' signal after W0); keys the user sets merge over it.
GCN_TABLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "node_embedding": {"init": {"name": "normal", "scale": 0.1}},
}

Features = Literal["bag_of_words", "embedding", "both"]


class GcnDataConfig(StrictModel):
    """The Planetoid split: train = the labelled rows of ``x``, valid = the ``valid_size``
    nodes after them (Kipf & Welling: 500), test = the nodes of ``test.index``."""

    valid_size: int = Field(default=500, gt=0, description="validation nodes after the train ones")


class GcnModelConfig(StrictModel):
    """``Z = softmax(Â ReLU(Â X W0) W1)`` (paper 003, eq. 2; Kipf & Welling, eq. 9).

    ``features`` chooses ``X``: ``bag_of_words`` (the dataset's features, Kipf & Welling),
    ``embedding`` (the learned ``(N, embedding_dim)`` table ``node_embedding``, the supplement)
    or ``both`` (their concatenation). ``normalize_features`` divides each bag-of-words row by
    its sum (Kipf's ``preprocess_features``). ``dropout`` acts on ``X`` and on the hidden layer.
    """

    features: Features = "bag_of_words"
    embedding_dim: int = Field(default=128, gt=0, description="width of the learned node table")
    hidden: int = Field(default=16, gt=0, description="width of the hidden GCN layer")
    dropout: float = Field(default=0.5, ge=0, lt=1, description="on X and on the hidden layer")
    normalize_features: bool = Field(default=True, description="bag-of-words rows sum to 1")


class GcnTrainConfig(LoopConfig):
    """Full-batch Adam: one step per epoch on the labelled training nodes.

    The loss is the cross-entropy over the training nodes (eq. 3, averaged as in ``tkipf/gcn``)
    plus ``weight_decay / 2 * ||W0||^2`` (TensorFlow's ``l2_loss``, as Kipf) plus the node
    table's own penalty (``node_embedding.regularize``, KD entropy). Early stopping watches
    ``eval.metric`` (the validation cross-entropy by default; the loop's patience: validations
    without a new best, not Kipf's 10-epoch moving-average rule); the best epoch is evaluated.
    ``init_from`` names a trained GCN run whose node table (its best checkpoint's rows, composed
    where that table is KD codes) is the pre-trained table ``u`` of a KD node table with
    ``kd.guidance: pdg`` (paper 003, section 2.3), which needs it; no other weight is copied.
    """

    max_epochs: int = Field(default=200, ge=0)
    lr: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=5e-4, ge=0, description="L2 on the first layer's W0")
    early_stopping_patience: int = Field(
        default=10, ge=0, description="validations without a better eval.metric; 0 disables"
    )
    init_from: str | None = Field(
        default=None, description="GCN run directory whose node table is the PDG teacher"
    )


class GcnEvalConfig(LoopEvalConfig):
    """Validation: every ``every`` epochs; ``metric`` selects the model and drives early
    stopping: ``loss`` (valid cross-entropy, lower is better; Kipf & Welling) or ``accuracy``
    (higher is better)."""

    every: int = Field(default=1, gt=0, description="epochs between validations")
    metric: Literal["loss", "accuracy"] = Field(
        default="loss", description="model selection and early stopping on the valid nodes"
    )


class GcnConfig(RunConfig):
    """The whole GCN run config (ARCHITECTURE.md: the table is ``node_embedding``)."""

    dataset: str = "cora"
    data: GcnDataConfig = Field(default_factory=GcnDataConfig)
    model: GcnModelConfig = Field(default_factory=GcnModelConfig)
    train: GcnTrainConfig = Field(default_factory=GcnTrainConfig)
    eval: GcnEvalConfig = Field(default_factory=GcnEvalConfig)
    node_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)

    @model_validator(mode="before")
    @classmethod
    def _table_defaults(cls, data: Any) -> Any:
        return table_defaults(data, GCN_TABLE_DEFAULTS)

    @model_validator(mode="after")
    def _table_is_used(self) -> Self:
        """A configured ``node_embedding`` needs ``model.features`` to use it."""
        default = EmbeddingConfig.model_validate(GCN_TABLE_DEFAULTS["node_embedding"])
        if self.model.features == "bag_of_words" and self.node_embedding != default:
            raise ValueError(
                "node_embedding is configured but model.features=bag_of_words does not use "
                "it; set model.features=embedding or both"
            )
        return self

    @model_validator(mode="after")
    def _table_options(self) -> Self:
        """Options of the shared table config that a GCN run does not provide."""
        table = self.node_embedding
        if table.sse.kind == "graph":
            raise ValueError("node_embedding.sse.kind=graph is not implemented for gcn; use se")
        if table.sharding != "none":
            raise ValueError("node_embedding.sharding: sharding is for KGE entity tables")
        pdg = table.kind == "kd" and table.kd.guidance == "pdg"
        if pdg and not self.train.init_from:
            raise ValueError(
                "node_embedding.kd.guidance=pdg needs a trained run to distill from: "
                "--set train.init_from=RUN_DIR (a GCN run with a node table)"
            )
        if self.train.init_from and not pdg:
            raise ValueError(
                f"train.init_from={self.train.init_from}: no table uses it; a GCN run passes "
                "its node table only as the pre-trained table of kind=kd with kd.guidance=pdg"
            )
        return self
