"""A KGE model: entity and relation tables plus an interaction, with reciprocal relations.

Head prediction uses reciprocal relations (Lacroix et al. 2018; LibKGE's reciprocal model; paper
002, appendix D): relation ``r`` has an inverse ``r + R``, and a query ``(?, r, t)`` is answered as
``(t, r + R, ?)``. The relation table therefore has ``2R`` rows.
"""

from __future__ import annotations

import torch
from torch import nn

from embedlab.embeddings.factory import build_embedding
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.kge.config import KgeConfig
from embedlab.kge.interactions import (
    Interaction,
    TailDistanceInteraction,
    TailLinearInteraction,
    build_interaction,
    score_all_tails,
    score_candidates,
)
from embedlab.kge.interactions.base import distance_kind
from embedlab.kge.interactions.gathered_distance import gathered_distance_scores


class KgeModel(nn.Module):
    """Entity table ``(N, d)``, relation table ``(2R, d_r)`` and an interaction.

    The interaction is registered as a submodule (TuckER's core tensor is a parameter) and typed
    by its protocol, :class:`~embedlab.kge.interactions.Interaction`.

    Either table may be a plain lookup or KD codes (``<table>_embedding.kind``); the entity
    table may be sharded row-wise over data-parallel ranks (``entity_embedding.sharding``).

    ``d_r`` is the interaction's ``relation_dim(d)`` (RotatE ``d/2``, RESCAL ``d^2``, TuckER
    ``model.relation_dim``).

    Args:
        num_entities: N. num_relations: R (without reciprocals). config: the KGE config.
        entity_graph: graph over entities for SSE-Graph (``entity_embedding.sse.kind: graph``).

    SSE (papers 000/001), when configured, replaces the looked-up subject and relation of each
    training query; tails are labels (1vsAll/KvsAll) or candidates (negative sampling) and are never
    replaced, as the SSE authors leave BPR negatives alone.

    Raises:
        UserError: an odd ``dim`` for ComplEx or RotatE.
    """

    interaction: Interaction

    def __init__(
        self,
        *,
        num_entities: int,
        num_relations: int,
        config: KgeConfig,
        entity_graph: RowGraph | None = None,
    ) -> None:
        super().__init__()
        dim = config.model.dim
        self.num_relations = num_relations
        self.interaction = build_interaction(config.model)
        self.entities = build_embedding(
            num_rows=num_entities,
            dim=dim,
            config=config.entity_embedding,
            graph=entity_graph,
            optimizer=config.train.optimizer,  # a row-wise sharded table's fused optimizer
            lr=config.train.lr,
        )
        self.relations = build_embedding(
            num_rows=2 * num_relations,
            dim=self.interaction.relation_dim(dim),
            config=config.relation_embedding,
        )

    @property
    def num_entities(self) -> int:
        return self.entities.num_rows

    @property
    def scoring_width(self) -> int:
        """Floats held per (query, entity) pair by :meth:`score_tails`: 1 on the fast paths of
        tail-linear and tail-distance interactions, the entity width ``d`` when broadcasting
        ``(B, N, d)``."""
        fast = isinstance(self.interaction, (TailLinearInteraction, TailDistanceInteraction))
        return 1 if fast else self.entities.dim

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
        tails = self.entities.apply_dropout(self.entities.lookup(t))  # labels: no SSE
        return self.interaction.score(self.entities(h), self.relations(r), tails)

    def score_candidates(
        self, subjects: torch.Tensor, relations: torch.Tensor, candidates: torch.Tensor
    ) -> torch.Tensor:
        """Scores of tail queries against their own candidates (negative sampling).

        Args:
            subjects, relations: ``(Q,)`` (relations ``< 2R``); candidates: ``(Q, k)`` entity ids.

        Returns:
            ``(Q, k)``. Each query's subject and relation are embedded once (one dropout mask
            per query); candidates are looked up per row.
        """
        h, r = self.entities(subjects), self.relations(relations)  # (Q, d), (Q, d_r)
        inter = self.interaction
        if isinstance(inter, TailDistanceInteraction) and self._whole_table_candidates():
            kind = distance_kind(inter)
            if kind is not None:  # (N, d) table: no dropout active, no SSE on candidates
                table = self.entities.lookup_all()
                return gathered_distance_scores(kind, inter.anchor(h, r), table, candidates)
        t = self.entities.apply_dropout(self.entities.lookup(candidates))  # (Q, k, d), no SSE
        if isinstance(inter, TailLinearInteraction):
            return (t @ inter.query(h, r).unsqueeze(2)).squeeze(2)  # (Q, k, d) @ (Q, d, 1)
        if isinstance(inter, TailDistanceInteraction):
            return score_candidates(inter, inter.anchor(h, r), t)
        return inter.score(h.unsqueeze(1), r.unsqueeze(1), t)

    def _whole_table_candidates(self) -> bool:
        """Whether candidate rows can be read from the entity table inside the gathered distance
        kernel: a plain local table (KD codes would compose all N rows; a sharded table's
        ``lookup_all`` is a collective) and no dropout drawing a mask per candidate row (eval
        mode or ``p = 0``)."""
        entities = self.entities
        no_dropout = not entities.training or entities.dropout == 0.0
        return no_dropout and isinstance(entities, EmbeddingTable)

    def penalty(self, triples: torch.Tensor) -> torch.Tensor:
        """Regularization for a batch of ``(B, 3)`` triples (scalar), see
        :meth:`EmbeddingTable.penalty`.

        As LibKGE's ``KgeModel.penalty``: the entity table is penalized once in its subject role
        and once in its object role ("penalized twice ... intended", so unweighted Lp counts the
        whole table twice), the relation table once for the batch's (forward) relations.
        """
        entities = self.entities.penalty(triples[:, 0]) + self.entities.penalty(triples[:, 2])
        return entities + self.relations.penalty(triples[:, 1])
