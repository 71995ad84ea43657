"""Config of one embedding table, shared by every task (ARCHITECTURE.md, config contract).

Every table (``entity_embedding``, ``relation_embedding``, ``user_embedding``, ``item_embedding``,
``token_embedding``, ``output_embedding``) is an :class:`EmbeddingConfig`. A task family states
its own table defaults (e.g. MF factors start as N(0, 0.1²)) with :func:`table_defaults`, which
merges them *under* what the user gives, key by key: setting ``sse`` never resets ``init``.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from embedlab.config.base import StrictModel, merge_defaults


class InitConfig(StrictModel):
    """Initializer of an embedding table (paper 002, tables 5-6: n / u / xn / xu).

    ``scale`` is the standard deviation for ``normal``, the bound ``a`` of U(-a, a) for
    ``uniform`` and the gain for ``xavier_normal`` / ``xavier_uniform``.
    """

    name: Literal["normal", "uniform", "xavier_normal", "xavier_uniform"] = "xavier_normal"
    scale: float = Field(default=1.0, gt=0)


class RegularizeConfig(StrictModel):
    """Penalty on an embedding table: ``lp`` (weight/p * sum |x|^p) or ``n3`` (lp with p = 3).

    ``weighted``: as LibKGE's ``regularize_args.weighted``, penalize only the rows used in the
    batch, each weighted by its frequency in the batch (divided by the batch's index count).
    """

    kind: Literal["none", "lp", "n3"] = "none"
    weight: float = Field(default=0.0, ge=0)
    p: int = Field(default=2, ge=1)
    weighted: bool = False


class SseConfig(StrictModel):
    """Stochastic Shared Embeddings on one table (Wu et al., NeurIPS 2019; papers 000/001).

    ``p`` is the *replacement* probability (p0 of SSE-Graph, p of SSE-SE); the authors' code
    exposes the keep probability ``1 - p``. ``rho`` weighs a graph neighbour against any other row
    (``.inf``: neighbours only). ``graph`` names the graph source; ``None`` = the task's default
    (KGE: the training graph; MF: the first source listed for the dataset and table).
    """

    kind: Literal["none", "se", "graph"] = "none"
    p: float = Field(default=0.01, ge=0, le=1, description="replacement probability")
    rho: float = Field(default=10.0, gt=0, description="SSE-Graph: neighbour weight ρ")
    graph: str | None = Field(default=None, description="SSE-Graph: graph source")


class KdConfig(StrictModel):
    """K-way D-dimensional discrete codes (Chen, Min, Sun, ICML 2018; paper 003).

    Each row ``i`` has ``D`` codes in ``0..K-1`` (code logits ``pi: (N, D, K)`` while training);
    its embedding is ``f(W^1[c^1], ..., W^D[c^D])`` with code embeddings of width ``code_dim``
    (d') and a composition ``f``: ``linear`` (sum or mean over the D vectors, then a projection
    to d), ``mlp`` (sum, hidden tanh layer, projection) or ``lstm`` (the supplement's section 2:
    an LSTM over the D code vectors, mean of its hidden states, projection).

    Relaxation (supplement table 1): ``relaxation`` softmax (CR) or Gumbel-softmax at temperature
    ``temperature``, annealed exponentially to ``temperature_final`` over ``anneal_epochs``
    (``temperature_final: null`` keeps it fixed); ``straight_through`` makes the forward pass
    hard one-hot with the relaxed gradient (STE); ``entropy_weight`` penalizes the mean entropy
    (nats) of the code distributions of a batch's rows.

    Guidance: ``pdg`` distills from a pre-trained table (``distill_weight * ||v_i - u_i||^2``
    per row, mean over the batch), ``autoencode`` computes the code logits from ``u_i`` with an
    encoder instead of free logits; ``online`` trains a full table alongside (it receives the
    task's gradient, the codes are distilled towards it). ``distill_epochs`` > 0 first fits the
    layer to the teacher alone (reconstruction, all rows), as a warm start before task training;
    ``freeze_codes`` then keeps the codes fixed (hard argmax) during task training and trains the
    code embeddings and the composition only (a gather instead of the ``(B, D, K)`` relaxation).
    """

    K: int = Field(default=32, ge=2, le=65536, description="code values per position")
    D: int = Field(default=32, gt=0, description="code positions per row")
    code_dim: int = Field(default=64, gt=0, description="width d' of a code embedding")
    composition: Literal["linear", "mlp", "lstm"] = "linear"
    reduce: Literal["sum", "mean"] = Field(default="sum", description="linear/mlp: D vectors -> 1")
    hidden: int | None = Field(default=None, gt=0, description="mlp hidden width (None: d)")
    shared_codebook: bool = Field(
        default=False, description="one code-embedding matrix for all D positions"
    )
    relaxation: Literal["softmax", "gumbel"] = "softmax"
    straight_through: bool = True
    temperature: float = Field(default=1.0, gt=0)
    temperature_final: float | None = Field(default=None, gt=0)
    anneal_epochs: float = Field(default=10.0, gt=0)
    entropy_weight: float = Field(default=0.0, ge=0)
    guidance: Literal["none", "pdg", "online"] = "none"
    autoencode: bool = Field(default=False, description="pdg: code logits = encoder(u_i)")
    distill_weight: float = Field(default=1.0, ge=0)
    logit_init_scale: float = Field(default=1.0, gt=0, description="std of initial code logits")
    freeze_codes: bool = Field(
        default=False,
        description="train only code embeddings + composition on the current hard codes",
    )
    distill_epochs: int = Field(
        default=0, ge=0, description="pdg: epochs fitting the codes to the teacher before the task"
    )
    distill_lr: float = Field(default=0.01, gt=0, description="Adam lr of the distillation stage")
    distill_batch_size: int = Field(default=1024, gt=0, description="rows per distillation step")


class EmbeddingConfig(StrictModel):
    """One embedding table: ``index transform -> lookup -> dropout`` (CONVENTIONS.md #2).

    ``kind: lookup`` is a plain ``(N, d)`` table; ``kind: kd`` composes each row from discrete
    codes (``kd``, :class:`KdConfig`).

    ``sharding: row_wise`` splits a lookup table's rows over the ranks of a data-parallel job
    (TorchRec, :class:`~embedlab.embeddings.sharded.ShardedEmbeddingTable`): each rank stores
    ``N / world_size`` rows and their optimizer state, updated by a fused optimizer. ``none``
    (default) keeps the whole table on every rank (replicated, reduced by DDP).
    """

    kind: Literal["lookup", "kd"] = "lookup"
    dropout: float = Field(default=0.0, ge=0, lt=1)
    sse: SseConfig = Field(default_factory=SseConfig)
    kd: KdConfig = Field(default_factory=KdConfig)
    init: InitConfig = Field(default_factory=InitConfig)
    regularize: RegularizeConfig = Field(default_factory=RegularizeConfig)
    sharding: Literal["none", "row_wise"] = Field(
        default="none", description="row_wise: rows split over the data-parallel ranks (TorchRec)"
    )

    @model_validator(mode="after")
    def _sharding_fits_kind(self) -> Self:
        """Row-wise sharding splits a plain ``(N, d)`` table; KD codes are not one."""
        if self.sharding == "row_wise" and self.kind == "kd":
            raise ValueError(
                "sharding=row_wise with kind=kd: KD codes are N×D small integers and codebooks "
                "K×D×d, they stay replicated under data parallelism; drop sharding"
            )
        return self


def table_defaults(data: Any, defaults: dict[str, dict[str, Any]]) -> Any:
    """Raw config ``data`` with each table's task defaults merged under the given keys.

    ``defaults`` maps a table key (``"user_embedding"``) to the partial table config the task
    starts from (``{"init": {"name": "normal", "scale": 0.1}}``). Use it in a task config's
    ``model_validator(mode="before")``; keys the user sets win, nested sections merge.
    """
    if not isinstance(data, dict):
        return data
    return {
        **data,
        **{key: merge_defaults(table, data.get(key, {})) for key, table in defaults.items()},
    }
