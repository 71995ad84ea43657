"""Typed config of a KGE run (``embedlab kge train``): model, loss, training type, evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from embedlab.config.base import StrictModel
from embedlab.config.io import build_typed_config
from embedlab.embeddings.config import EmbeddingConfig
from embedlab.losses.registry import LOSSES
from embedlab.training.config import LoopConfig, LoopEvalConfig, RunConfig


class TuckerConfig(StrictModel):
    """TuckER's own layers (Balazevic et al. 2019, section 5.2 and their code): batch norm of
    the subject embedding and of the query, dropout of the subject after its batch norm
    (``input_dropout``), of the relation-specific core ``W ×_2 r`` (``hidden_dropout1``) and of
    the query after its batch norm (``hidden_dropout2``). All off by default (the plain
    trilinear model); the configs of paper 002's TuckER rows switch them on."""

    batch_norm: bool = False
    input_dropout: float = Field(default=0.0, ge=0, lt=1)
    hidden_dropout1: float = Field(default=0.0, ge=0, lt=1)
    hidden_dropout2: float = Field(default=0.0, ge=0, lt=1)


class ModelConfig(StrictModel):
    """Scoring function and widths (``dim`` counts real numbers, as LibKGE and paper 002)."""

    name: Literal["distmult", "complex", "transe", "rotate", "rescal", "tucker"] = "complex"
    dim: int = Field(
        default=128,
        gt=0,
        description="real numbers per entity embedding (ComplEx/RotatE: 2x complex)",
    )
    p_norm: Literal[1, 2] = Field(default=1, description="TransE: L1 or L2 distance")
    relation_dim: int | None = Field(
        default=None, gt=0, description="TuckER: relation width d_r (None: dim)"
    )
    tucker: TuckerConfig = Field(default_factory=TuckerConfig)

    @model_validator(mode="after")
    def _tucker_keys_for_tucker(self) -> Self:
        if self.name != "tucker" and self.tucker != TuckerConfig():
            raise ValueError(f"model.tucker is read by model.name=tucker only, not {self.name}")
        return self


class LossConfig(StrictModel):
    """A loss of paper 002, table 1, with its hyperparameters (each used by its loss only)."""

    name: Literal["sce", "sce_ls", "sce_bc", "ns", "ns_freq", "sans"] = "sce"
    label_smoothing: float = Field(
        default=0.3, ge=0, lt=1, description="sce_ls: label smoothing λ (eq. 17)"
    )
    adversarial_temperature: float = Field(
        default=1.0, ge=0, description="sans: self-adversarial temperature α (eq. 14)"
    )
    margin: float = Field(
        default=0.0, description="ns/ns_freq/sans: margin γ added to scores (distance models)"
    )
    negative_reduction: Literal["sum", "mean"] = Field(
        default="sum",
        description="ns family: sum over negatives (eq. 6, LibKGE) or mean (Sun et al. 2019)",
    )
    freq_reading: Literal["sampled", "weighted"] = Field(
        default="sampled",
        description="ns_freq: draw negatives from p_n (word2vec) or reweight uniform ones by p_n",
    )
    freq_power: float = Field(
        default=1.0, ge=0, description="ns_freq: p_n ∝ count^β (word2vec uses 0.75)"
    )


class NegativesConfig(StrictModel):
    """Negative sampling (paper 002, tables 5-6 "Sample sub./obj.")."""

    head: int = Field(default=1, gt=0, description="negatives per triple corrupting the head")
    tail: int = Field(default=1, gt=0, description="negatives per triple corrupting the tail")
    filter: bool = Field(
        default=False, description="resample negatives that are known training triples"
    )


class TrainConfig(LoopConfig):
    """KGE training: type (LibKGE's training jobs), optimizer, plateau LR decay on valid MRR."""

    type: Literal["1vsAll", "KvsAll", "negative_sampling"] = "1vsAll"
    negatives: NegativesConfig = Field(default_factory=NegativesConfig)
    init_from: str | None = Field(
        default=None, description="run directory whose embeddings initialize this run (table 3)"
    )
    batch_size: int = Field(default=512, gt=0)
    optimizer: Literal["adam", "adagrad"] = "adam"
    lr: float = Field(default=0.001, gt=0)
    lr_decay: float = Field(default=0.95, gt=0, le=1, description="ReduceLROnPlateau factor")
    lr_patience: int = Field(default=5, ge=0, description="validations without MRR gain")
    early_stopping_patience: int = Field(default=10, ge=0, description="0 disables")


class EvalConfig(LoopEvalConfig):
    batch_size: int | None = Field(default=None, gt=0, description="None: adapt to memory")
    ties: Literal["realistic", "optimistic", "pessimistic"] = "realistic"


class KgeConfig(RunConfig):
    """A KGE experiment (ARCHITECTURE.md, config contract)."""

    dataset: str = "umls"
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    entity_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    relation_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)

    @model_validator(mode="after")
    def _keys_the_method_uses(self) -> Self:
        """A key set to a non-default value must be read by the chosen loss / training type
        (defaults pass: a resolved config holds every key). A loss reads
        the fields its registry entry names (``LOSSES[name].hyperparameters``, plus the noise
        keys where it needs ``p_n``); ``train.negatives`` is read by ``negative_sampling``."""
        spec = LOSSES[self.loss.name]
        used = {"name", *spec.hyperparameters}
        if spec.noise:
            used |= {"freq_reading", "freq_power"}
        default = LossConfig(name=self.loss.name)
        unused = sorted(
            key
            for key in self.loss.model_fields_set - used
            if getattr(self.loss, key) != getattr(default, key)  # a resolved config has them all
        )
        if unused:
            raise ValueError(
                f"loss.{unused[0]} is not used by loss {self.loss.name!r} (it reads "
                f"{', '.join(sorted(used - {'name'})) or 'no hyper-parameter'}); remove the key"
            )
        if self.train.type != "negative_sampling" and self.train.negatives != NegativesConfig():
            raise ValueError(
                f"train.negatives is read by train.type=negative_sampling only, not "
                f"{self.train.type} (which scores all entities); remove the key"
            )
        return self

    @model_validator(mode="after")
    def _sse_graphs(self) -> Self:
        """SSE-Graph on entities uses the training graph; there is no graph over relations."""
        sse = self.entity_embedding.sse
        if sse.kind == "graph" and sse.graph not in (None, "train"):
            raise ValueError(
                f"entity_embedding.sse.graph={sse.graph!r}: for KGE the entity graph is the "
                "training graph ('train', the default)"
            )
        if self.relation_embedding.sse.kind == "graph":
            raise ValueError(
                "relation_embedding.sse.kind=graph: there is no graph over relations; use kind=se"
            )
        return self

    @model_validator(mode="after")
    def _sharded_entities_only(self) -> Self:
        """Row-wise sharding is for the entity table; the relation table stays replicated."""
        if self.relation_embedding.sharding != "none":
            raise ValueError(
                f"relation_embedding.sharding={self.relation_embedding.sharding}: relation "
                "tables are small (2R rows) and stay replicated; shard entity_embedding only"
            )
        if self.entity_embedding.sharding != "none" and self.train.init_from:
            raise ValueError(
                "entity_embedding.sharding with train.init_from (--init-from): initializing a "
                "sharded table from another run is not implemented; train without sharding"
            )
        return self


def build_config(
    *, path: Path | None = None, overrides: list[str] | None = None, base: dict | None = None
) -> KgeConfig:
    """Resolve a :class:`KgeConfig`; see :func:`embedlab.config.io.build_typed_config`."""
    return build_typed_config(KgeConfig, path=path, overrides=overrides, base=base)
