"""KGE interactions (scoring functions), one module each, and their registry."""

from __future__ import annotations

from torch import nn

from embedlab.kge.config import ModelConfig
from embedlab.kge.interactions.base import (
    Interaction,
    TailDistanceInteraction,
    TailLinearInteraction,
    score_all_tails,
    score_candidates,
)
from embedlab.kge.interactions.complex import ComplEx
from embedlab.kge.interactions.distmult import DistMult
from embedlab.kge.interactions.rescal import Rescal
from embedlab.kge.interactions.rotate import RotatE
from embedlab.kge.interactions.transe import TransE
from embedlab.kge.interactions.tucker import TuckER

INTERACTIONS: dict[str, type[nn.Module]] = {
    "distmult": DistMult,
    "complex": ComplEx,
    "transe": TransE,
    "rotate": RotatE,
    "rescal": Rescal,
    "tucker": TuckER,
}


def build_interaction(config: ModelConfig) -> nn.Module:
    """The interaction named by ``config.name`` with its own settings from the config."""
    name, dim = config.name, config.dim
    if name == "transe":
        return TransE(p_norm=config.p_norm)
    if name == "tucker":
        return TuckER(dim=dim, relation_dim=config.relation_dim or dim)
    if name in ("complex", "rotate", "rescal"):
        return INTERACTIONS[name](dim=dim)
    return INTERACTIONS[name]()


__all__ = [
    "INTERACTIONS",
    "ComplEx",
    "DistMult",
    "Interaction",
    "Rescal",
    "RotatE",
    "TailDistanceInteraction",
    "TailLinearInteraction",
    "TransE",
    "TuckER",
    "build_interaction",
    "score_all_tails",
    "score_candidates",
]
