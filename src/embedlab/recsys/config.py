"""Typed config of a matrix-factorization run (``embedlab mf train``)."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, PositiveInt, field_validator, model_validator

from embedlab.config.base import StrictModel
from embedlab.embeddings.config import EmbeddingConfig, table_defaults
from embedlab.training.config import LoopConfig, LoopEvalConfig, RunConfig

#: Factor tables start as N(0, 0.1^2), as Surprise's SVD; keys the user sets are merged over it.
MF_TABLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "user_embedding": {"init": {"name": "normal", "scale": 0.1}},
    "item_embedding": {"init": {"name": "normal", "scale": 0.1}},
}


class MfDataConfig(StrictModel):
    """Which split of the rating dataset (``embedlab.datasets.ratings.load_ratings``)."""

    protocol: str | None = Field(default=None, description="None: the dataset's default split")
    valid_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="train ratings held out for validation (seeded)"
    )
    sparse_users: int | None = Field(
        default=None, gt=0, description="keep only users with fewer train ratings (paper: 60)"
    )


class MfModelConfig(StrictModel):
    """``r_hat(u, i) = mu + b_u + b_i + <p_u, q_i>`` (biases optional)."""

    dim: int = Field(default=100, gt=0, description="rank d of the factors")
    biases: bool = True


class LaplacianConfig(StrictModel):
    """Graph-Laplacian penalties ``lam_u tr(P^T L_u P) + lam_i tr(Q^T L_i Q)`` (GRALS)."""

    user: float = Field(default=0.0, ge=0, description="weight lam_u on the user graph")
    item: float = Field(default=0.0, ge=0, description="weight lam_i on the item graph")
    user_graph: str | None = Field(default=None, description="None: the dataset's default")
    item_graph: str | None = Field(default=None, description="None: the dataset's default")
    cg_iterations: int = Field(default=30, gt=0, description="conjugate-gradient steps per solve")


class MfTrainConfig(LoopConfig):
    """How factors are fitted.

    ``sgd``: mini-batch SGD with sparse row updates; ``weight_decay`` is the per-rating L2 weight
    (Surprise's ``reg_all``). Each table's ``regularize`` adds the KGE table penalty (Lp / N3,
    weighted or not; see :func:`embedlab.recsys.sgd.sgd_epoch` and ``als_epoch``). ``als``: closed-form alternating least squares with L2 weight
    ``weight_decay * n_rows`` (weighted-lambda, Zhou et al. 2008). ``grals``: ALS plus the
    ``laplacian`` penalties, each half-step solved by conjugate gradient (Rao et al., NeurIPS 2015).
    """

    method: Literal["sgd", "als", "grals"] = "sgd"
    max_epochs: int = Field(default=50, ge=0)
    checkpoint_every: int = Field(default=5, gt=0, description="epochs between last-checkpoints")
    batch_size: int = Field(default=8192, gt=0, description="sgd: ratings per step")
    lr: float = Field(default=0.01, gt=0, description="sgd learning rate (paper: 0.01)")
    weight_decay: float = Field(default=0.05, ge=0, description="L2 weight λ")
    laplacian: LaplacianConfig = Field(default_factory=LaplacianConfig)

    @model_validator(mode="after")
    def _fp32_only(self) -> Self:
        """Factors are updated by hand-written fp32 steps (SGD) or solves (ALS): no autocast."""
        if self.precision != "fp32":
            raise ValueError(
                f"train.precision={self.precision}: MF updates are hand-written fp32 steps; "
                "use precision fp32"
            )
        return self


class MfEvalConfig(LoopEvalConfig):
    """Validation cadence (valid RMSE, when ``data.valid_fraction`` > 0) and top-k ranking.

    ``ranking_k`` adds precision/recall/NDCG/MAP@k for each k to every evaluation
    (:mod:`embedlab.recsys.ranking`; ``[]`` turns them off). On by default: scoring every item
    for each evaluated user took 0.09-0.12 s on ML-1M's SSE split (1496 users x 3656 items, one
    thread), less than its RMSE pass (0.25 s; docs/sse.md).
    """

    ranking_k: list[PositiveInt] = Field(
        default_factory=lambda: [10],
        description="cutoffs k of precision/recall/NDCG/MAP@k; [] = off",
    )
    relevance_threshold: float = Field(
        default=4.0, description="a held-out rating >= this is relevant (ranking metrics)"
    )

    @field_validator("ranking_k")
    @classmethod
    def _sorted_unique(cls, ks: list[int]) -> list[int]:
        return sorted(set(ks))


class MfConfig(RunConfig):
    """The whole MF run config (ARCHITECTURE.md: ``user_embedding`` / ``item_embedding`` tables).

    Table defaults (:data:`MF_TABLE_DEFAULTS`) are merged under the given table keys, so
    ``item_embedding: {sse: {kind: se}}`` keeps the N(0, 0.1²) initializer.
    """

    dataset: str = "ml-100k"
    data: MfDataConfig = Field(default_factory=MfDataConfig)
    model: MfModelConfig = Field(default_factory=MfModelConfig)
    train: MfTrainConfig = Field(default_factory=MfTrainConfig)
    eval: MfEvalConfig = Field(default_factory=MfEvalConfig)
    user_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    item_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)

    @model_validator(mode="before")
    @classmethod
    def _table_defaults(cls, data: Any) -> Any:
        return table_defaults(data, MF_TABLE_DEFAULTS)

    @model_validator(mode="after")
    def _method_fits_tables(self) -> Self:
        """Cross-field rules, checked before anything is built.

        MF trains plain lookup tables (no KD codes, no sharding); SSE and dropout act on sampled
        lookups (SGD only); ALS/GRALS solve each half-step in closed form, which only an L2 table
        penalty (``regularize: {kind: lp, p: 2}``) allows; Laplacian weights need GRALS; an SSE
        graph source needs ``sse.kind: graph``.
        """
        method = self.train.method
        for name, table in (("user", self.user_embedding), ("item", self.item_embedding)):
            key = f"{name}_embedding"
            if table.kind != "lookup":
                raise ValueError(
                    f"{key}.kind={table.kind}: MF trains with hand-written gradients on plain "
                    "tables; KD codes are available for KGE and LM tables"
                )
            if table.sharding != "none":
                raise ValueError(
                    f"{key}.sharding={table.sharding}: sharding is implemented for KGE entity "
                    "tables"
                )
            if table.sse.graph is not None and table.sse.kind != "graph":
                raise ValueError(f"{key}.sse.graph is set but {key}.sse.kind is not graph")
            if method == "sgd":
                continue
            if table.sse.kind != "none" or table.dropout > 0:
                raise ValueError(
                    f"{key}: SSE and dropout act on sampled lookups and need "
                    f"train.method=sgd, not {method}"
                )
            reg = table.regularize
            if reg.kind != "none" and reg.weight > 0 and (reg.kind == "n3" or reg.p != 2):
                what = "kind=n3" if reg.kind == "n3" else f"p={reg.p}"
                raise ValueError(
                    f"{key}.regularize.{what}: ALS/GRALS solve each half-step in closed form, "
                    "which only an L2 penalty allows; use kind lp with p 2, or train.method sgd"
                )
        lap = self.train.laplacian
        if (lap.user or lap.item) and method != "grals":
            raise ValueError("train.laplacian weights need train.method=grals")
        return self
