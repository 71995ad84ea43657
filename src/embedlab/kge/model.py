"""A KGE model: entity and relation tables plus an interaction, with reciprocal relations.

Head prediction uses reciprocal relations (Lacroix et al. 2018; LibKGE's reciprocal model; paper
002, appendix D): relation ``r`` has an inverse ``r + R``, and a query ``(?, r, t)`` is answered as
``(t, r + R, ?)``. The relation table therefore has ``2R`` rows.
"""

from __future__ import annotations

import torch
from torch import nn

from embedlab.config import KgeConfig
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.errors import UserError
from embedlab.kge.interactions import INTERACTIONS, Interaction, score_all_tails


class KgeModel(nn.Module):
    """Entity table ``(N, d)``, relation table ``(2R, d)`` and a parameter-free interaction.

    Args:
        num_entities: N. num_relations: R (without reciprocals). config: the KGE config.

    Raises:
        UserError: unknown model name or an odd ``dim`` for ComplEx.
    """

    def __init__(self, *, num_entities: int, num_relations: int, config: KgeConfig) -> None:
        super().__init__()
        name, dim = config.model.name, config.model.dim
        if name not in INTERACTIONS:
            raise UserError(f"unknown model {name!r}; known: {', '.join(INTERACTIONS)}")
        if name == "complex" and dim % 2:
            raise UserError(f"model.dim must be even for ComplEx (real + imaginary), got {dim}")
        self.num_relations = num_relations
        self.interaction: Interaction = INTERACTIONS[name]()
        self.entities = EmbeddingTable(
            num_rows=num_entities, dim=dim, config=config.entity_embedding
        )
        self.relations = EmbeddingTable(
            num_rows=2 * num_relations, dim=dim, config=config.relation_embedding
        )

    @property
    def num_entities(self) -> int:
        return self.entities.num_rows

    def score_tails(self, heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """``(B,)`` heads and ``(B,)`` relations (``< 2R``) -> ``(B, N)`` scores of every tail."""
        return score_all_tails(
            self.interaction, self.entities(heads), self.relations(relations), self.entities.all()
        )

    def score_heads(self, relations: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
        """``(?, r, t)`` queries answered as ``(t, r + R, ?)``: ``(B,)``, ``(B,)`` -> ``(B, N)``."""
        return self.score_tails(tails, relations + self.num_relations)

    def score_triples(self, triples: torch.Tensor) -> torch.Tensor:
        """``(B, 3)`` triples -> ``(B,)`` scores."""
        h, r, t = triples.unbind(1)
        return self.interaction.score(self.entities(h), self.relations(r), self.entities(t))

    def penalty(self, triples: torch.Tensor) -> torch.Tensor:
        """Regularization for a batch of ``(B, 3)`` triples (scalar), see
        :meth:`EmbeddingTable.penalty`.

        As LibKGE's ``KgeModel.penalty``: the entity table is penalized once in its subject role
        and once in its object role ("penalized twice ... intended", so unweighted Lp counts the
        whole table twice), the relation table once for the batch's (forward) relations.
        """
        entities = self.entities.penalty(triples[:, 0]) + self.entities.penalty(triples[:, 2])
        return entities + self.relations.penalty(triples[:, 1])
