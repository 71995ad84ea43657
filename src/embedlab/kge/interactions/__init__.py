"""KGE interactions (scoring functions), one module each, and their registry."""

from __future__ import annotations

from typing import Protocol

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


class InteractionClass(Protocol):
    """A registry entry: an interaction class, which reads its own settings from the config."""

    def from_config(self, config: ModelConfig) -> Interaction: ...


INTERACTIONS: dict[str, InteractionClass] = {
    "distmult": DistMult,
    "complex": ComplEx,
    "transe": TransE,
    "rotate": RotatE,
    "rescal": Rescal,
    "tucker": TuckER,
}


def build_interaction(config: ModelConfig) -> Interaction:
    """The interaction named by ``config.name``, an ``nn.Module`` (TuckER owns a parameter)."""
    return INTERACTIONS[config.name].from_config(config)


__all__ = [
    "INTERACTIONS",
    "ComplEx",
    "DistMult",
    "Interaction",
    "InteractionClass",
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
