"""Batched filtered evaluation of a KGE model in both directions.

The model is any :class:`TailScorer` (structurally: :class:`embedlab.kge.model.KgeModel`), so
evaluation does not import the KGE package that uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

from embedlab.distributed import SINGLE, World, gather_cat, shard_bounds
from embedlab.evaluation.breakdown import by_relation, direction_metrics
from embedlab.evaluation.filtering import KnownAnswers
from embedlab.evaluation.queries import as_queries
from embedlab.evaluation.ranking import Ranks, filter_scores_, metrics_from_ranks, ranks_from_scores

SCORE_BUDGET_BYTES = 16 * 2**20  # one (B, N) float32 score block; cache-sized


class TailScorer(Protocol):
    """What ranking needs of a KGE model with reciprocal relations."""

    training: bool
    num_relations: int  # R; relation ids of queries are < 2R

    @property
    def num_entities(self) -> int: ...

    @property
    def scoring_width(self) -> int:
        """Floats held per (query, entity) pair while scoring all tails (memory per score)."""
        ...

    def score_tails(self, heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """``(B,)`` subjects and ``(B,)`` relations ``< 2R`` -> ``(B, N)`` scores."""
        ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


def auto_batch_size(num_entities: int, budget_bytes: int = SCORE_BUDGET_BYTES) -> int:
    """Largest batch whose ``(B, N)`` float32 score block fits in ``budget_bytes`` (>= 1)."""
    return max(1, budget_bytes // (4 * num_entities))


@torch.no_grad()
def rank_queries(
    model: TailScorer,
    queries: torch.Tensor,
    known: KnownAnswers,
    *,
    batch_size: int | None = None,
    world: World = SINGLE,
) -> Ranks:
    """Filtered ranks of tail queries ``(Q, 3)`` rows (subject, relation < 2R, answer).

    Every known answer of a query other than its own true answer is removed (set to -inf).
    ``batch_size`` None adapts it to memory; on an out-of-memory error it halves and retries.
    In a data-parallel job (``world``) each rank ranks a contiguous run of whole batches and
    the ranks are gathered in order: every query is scored in the same batch as in one process,
    so the result is identical (a rank that runs out of memory halves its own batches, which
    may change the last bits of its scores).
    """
    return _rank(model, queries, known, batch_size, world, raw=False)[0]


@torch.no_grad()
def rank_queries_with_raw(
    model: TailScorer,
    queries: torch.Tensor,
    known: KnownAnswers,
    *,
    batch_size: int | None = None,
    world: World = SINGLE,
) -> tuple[Ranks, Ranks]:
    """``(filtered, raw)`` ranks of ``(Q, 3)`` tail queries from one scoring pass.

    ``raw`` ranks count every candidate, known answers included (the "raw" setting of Bordes
    et al. 2013, section 4.2), with the same tie rules (:func:`ranks_from_scores` on the scores
    before filtering); so ``raw >= filtered`` query by query. As :func:`rank_queries` otherwise.
    """
    filtered, raw = _rank(model, queries, known, batch_size, world, raw=True)
    assert raw is not None
    return filtered, raw


def _gather(ranks: Ranks, world: World) -> Ranks:
    return Ranks(
        optimistic=gather_cat(ranks.optimistic, world),
        pessimistic=gather_cat(ranks.pessimistic, world),
        realistic=gather_cat(ranks.realistic, world),
        num_candidates=gather_cat(ranks.num_candidates, world),
    )


@torch.no_grad()
def _rank(
    model: TailScorer,
    queries: torch.Tensor,
    known: KnownAnswers,
    batch_size: int | None,
    world: World,
    *,
    raw: bool,
) -> tuple[Ranks, Ranks | None]:
    """Filtered ranks and, if ``raw``, unfiltered ones (:func:`rank_queries`)."""
    batch = batch_size or auto_batch_size(model.num_entities * model.scoring_width)
    if world.parallel:
        start, stop = shard_bounds(len(queries), world, align=batch)
        mine, mine_raw = _rank(model, queries[start:stop], known, batch, SINGLE, raw=raw)
        # ranks hold whole batches, at most one apart: the lighter ranks score one more batch
        # (thrown away) so that every rank calls the model equally often (a sharded table's
        # lookups are collectives)
        if -(-(stop - start) // batch) < -(-len(queries) // batch) / world.world_size:
            model.score_tails(queries[:1, 0], queries[:1, 1])
        return _gather(mine, world), None if mine_raw is None else _gather(mine_raw, world)
    parts: list[Ranks] = []
    raw_parts: list[Ranks] = []
    start = 0
    while start < len(queries):
        chunk = queries[start : start + batch]
        try:
            scores = model.score_tails(chunk[:, 0], chunk[:, 1])  # (B, N)
        except (torch.OutOfMemoryError, MemoryError):
            if batch == 1:
                raise
            batch //= 2
            continue
        targets = chunk[:, 2]
        if raw:
            raw_parts.append(ranks_from_scores(scores, targets))  # before filtering
        true = scores.gather(1, targets.unsqueeze(1))  # (B, 1)
        rows, cols = known.lookup(chunk[:, 0], chunk[:, 1])
        filter_scores_(scores, rows, cols)
        scores.scatter_(1, targets.unsqueeze(1), true)  # restore the true answer
        parts.append(ranks_from_scores(scores, targets))
        start += len(chunk)
    if not parts:  # no queries (a rank with nothing to rank)
        empty = queries.new_zeros((0,), dtype=torch.float64)
        nothing = Ranks(empty, empty, empty, queries.new_zeros((0,)))
        return nothing, nothing if raw else None
    return Ranks.cat(parts), Ranks.cat(raw_parts) if raw else None


def evaluate_kge(
    model: TailScorer,
    triples: torch.Tensor,
    known: KnownAnswers,
    *,
    ties: str = "realistic",
    batch_size: int | None = None,
    world: World = SINGLE,
    raw: bool = False,
    relation_labels: Sequence[str] | None = None,
) -> dict:
    """Filtered MRR, MR, Hits@1/3/10, adjusted MRR and AMRI for ``(n, 3)`` triples, both
    directions (split across the ranks of ``world`` and gathered: :func:`rank_queries`).

    ``raw`` adds the unfiltered metrics from the same scoring pass
    (:func:`rank_queries_with_raw`); ``relation_labels`` (the ``R`` labels) adds the metrics of
    each relation's queries (:func:`~embedlab.evaluation.breakdown.by_relation`).

    Returns:
        ``{"mrr", "mr", "hits@1", "hits@3", "hits@10", "adjusted_mrr", "amri", "num_queries",
        "tail": {...}, "head": {...}}``; overall values average the 2n queries. With ``raw``:
        ``"raw": {"mrr", "mr", "hits@1", "hits@3", "hits@10"}``; with ``relation_labels``:
        ``"by_relation": {label: {... as overall, with "tail" and "head"}}``.
    """
    was_training = model.training
    model.eval()
    try:
        queries = as_queries(triples, model.num_relations)  # (2n, 3)
        filtered, unfiltered = _rank(model, queries, known, batch_size, world, raw=raw)
    finally:
        model.train(was_training)
    ranks = filtered.get(ties)
    out: dict = direction_metrics(ranks, filtered.num_candidates)
    if unfiltered is not None:
        out["raw"] = metrics_from_ranks(unfiltered.get(ties))
    if relation_labels is not None:
        out["by_relation"] = by_relation(
            ranks, filtered.num_candidates, triples[:, 1], relation_labels
        )
    return out


def known_answers(all_triples: torch.Tensor, num_relations: int) -> KnownAnswers:
    """Filter index from every known triple (train + valid + test), both directions."""
    return KnownAnswers(
        queries=as_queries(all_triples, num_relations), num_relation_slots=2 * num_relations
    )
