"""Typed experiment configs: YAML files plus dotted ``--set key=value`` overrides.

Every key is validated by pydantic; unknown keys and wrong types are rejected with the key's dotted
name (:class:`~embedlab.errors.UserError`). The resolved config (every default filled in) is what a
run directory stores in ``config.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embedlab.errors import UserError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


class InitConfig(_Strict):
    """Initializer of an embedding table (paper 002, tables 5-6: n / u / xn / xu).

    ``scale`` is the standard deviation for ``normal``, the bound ``a`` of U(-a, a) for
    ``uniform`` and the gain for ``xavier_normal`` / ``xavier_uniform``.
    """

    name: Literal["normal", "uniform", "xavier_normal", "xavier_uniform"] = "xavier_normal"
    scale: float = Field(default=1.0, gt=0)


class RegularizeConfig(_Strict):
    """Penalty on an embedding table: ``lp`` (weight/p * sum |x|^p) or ``n3`` (lp with p = 3).

    ``weighted``: as LibKGE's ``regularize_args.weighted``, penalize only the rows used in the
    batch, each weighted by its frequency in the batch (divided by the batch's index count).
    """

    kind: Literal["none", "lp", "n3"] = "none"
    weight: float = Field(default=0.0, ge=0)
    p: int = Field(default=2, ge=1)
    weighted: bool = False


class SseConfig(_Strict):
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


class KdConfig(_Strict):
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


class EmbeddingConfig(_Strict):
    """One embedding table: ``index transform -> lookup -> dropout`` (CONVENTIONS.md #2).

    ``kind: lookup`` is a plain ``(N, d)`` table; ``kind: kd`` composes each row from discrete
    codes (``kd``, :class:`KdConfig`).
    """

    kind: Literal["lookup", "kd"] = "lookup"
    dropout: float = Field(default=0.0, ge=0, lt=1)
    sse: SseConfig = Field(default_factory=SseConfig)
    kd: KdConfig = Field(default_factory=KdConfig)
    init: InitConfig = Field(default_factory=InitConfig)
    regularize: RegularizeConfig = Field(default_factory=RegularizeConfig)


class ModelConfig(_Strict):
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


class LossConfig(_Strict):
    """A loss of paper 002, table 1, with its hyperparameters (each used by its loss only)."""

    name: Literal["sce", "sce_ls", "sce_bc", "ns", "ns_freq", "sans"] = "sce"
    lam: float = Field(default=0.3, ge=0, lt=1, description="sce_ls: label smoothing λ (eq. 17)")
    alpha: float = Field(default=1.0, ge=0, description="sans: temperature α (eq. 14)")
    gamma: float = Field(
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


class NegativesConfig(_Strict):
    """Negative sampling (paper 002, tables 5-6 "Sample sub./obj.")."""

    head: int = Field(default=1, gt=0, description="negatives per triple corrupting the head")
    tail: int = Field(default=1, gt=0, description="negatives per triple corrupting the tail")
    filter: bool = Field(
        default=False, description="resample negatives that are known training triples"
    )


class TrainConfig(_Strict):
    type: Literal["1vsAll", "KvsAll", "negative_sampling"] = "1vsAll"
    negatives: NegativesConfig = Field(default_factory=NegativesConfig)
    init_from: str | None = Field(
        default=None, description="run directory whose embeddings initialize this run (table 3)"
    )
    max_epochs: int = Field(default=100, ge=0)
    max_minutes: float | None = Field(default=None, gt=0, description="wall-clock training budget")
    batch_size: int = Field(default=512, gt=0)
    optimizer: Literal["adam", "adagrad"] = "adam"
    lr: float = Field(default=0.001, gt=0)
    lr_decay: float = Field(default=0.95, gt=0, le=1, description="ReduceLROnPlateau factor")
    lr_patience: int = Field(default=5, ge=0, description="validations without MRR gain")
    early_stopping_patience: int = Field(default=10, ge=0, description="0 disables")
    num_threads: int | None = Field(default=None, gt=0)
    checkpoint_every: int = Field(default=1, gt=0, description="epochs between last-checkpoints")


class EvalConfig(_Strict):
    every: int = Field(default=5, gt=0, description="epochs between validations")
    batch_size: int | None = Field(default=None, gt=0, description="None: adapt to memory")
    ties: Literal["realistic", "optimistic", "pessimistic"] = "realistic"


class KgeConfig(_Strict):
    """A KGE experiment (ARCHITECTURE.md, config contract)."""

    seed: int = 0
    dataset: str = "umls"
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    entity_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    relation_embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and YAML-parsed value.

    Raises:
        UserError: when ``=`` or the key is missing.
    """
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key=value (e.g. train.lr=0.1), got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise UserError(f"--set {item}: the value is not valid YAML; quote it") from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted ``key=value`` overrides to a nested dict (in place) and return it."""
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UserError(f"--set {item}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {key}: {msg}")
    return f"invalid config ({source}):\n" + "\n".join(lines)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping raises :class:`UserError`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping at the top level")
    return data


def build_config(
    *, path: Path | None = None, overrides: list[str] | None = None, base: dict | None = None
) -> KgeConfig:
    """Resolve a :class:`KgeConfig`; see :func:`build_typed_config`."""
    return build_typed_config(KgeConfig, path=path, overrides=overrides, base=base)


def build_typed_config(
    cls: type[ConfigT],
    *,
    path: Path | None = None,
    overrides: list[str] | None = None,
    base: dict | None = None,
) -> ConfigT:
    """Resolve a config of type ``cls`` from an optional YAML file, a base dict and overrides.

    Raises:
        UserError: unknown keys, wrong types or values, unreadable files; the message names keys.
    """
    data: dict[str, Any] = dict(base or {})
    if path is not None:
        data.update(load_yaml(path))
    apply_overrides(data, overrides or [])
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise UserError(_format_validation_error(exc, str(path or "command line"))) from None


def dump_config(config: BaseModel) -> str:
    """The fully resolved config as YAML (what ``RUN_DIR/config.yaml`` holds)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
