"""Batched filtered evaluation of a KGE model in both directions."""

from __future__ import annotations

import torch

from embedlab.evaluation.filtering import KnownAnswers
from embedlab.evaluation.ranking import Ranks, filter_scores_, metrics_from_ranks, ranks_from_scores
from embedlab.kge.interactions import TailDistanceInteraction, TailLinearInteraction
from embedlab.kge.model import KgeModel
from embedlab.kge.reciprocal import as_queries

SCORE_BUDGET_BYTES = 16 * 2**20  # one (B, N) float32 score block; cache-sized


def auto_batch_size(num_entities: int, budget_bytes: int = SCORE_BUDGET_BYTES) -> int:
    """Largest batch whose ``(B, N)`` float32 score block fits in ``budget_bytes`` (>= 1)."""
    return max(1, budget_bytes // (4 * num_entities))


@torch.no_grad()
def rank_queries(
    model: KgeModel, queries: torch.Tensor, known: KnownAnswers, *, batch_size: int | None = None
) -> Ranks:
    """Filtered ranks of tail queries ``(Q, 3)`` rows (subject, relation < 2R, answer).

    Every known answer of a query other than its own true answer is removed (set to -inf).
    ``batch_size`` None adapts it to memory; on an out-of-memory error it halves and retries.
    """
    fast = isinstance(model.scorer, (TailLinearInteraction, TailDistanceInteraction))
    width = 1 if fast else model.entities.dim  # plain broadcasting: (B, N, d)
    batch = batch_size or auto_batch_size(model.num_entities * width)
    parts: list[Ranks] = []
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
        true = scores.gather(1, targets.unsqueeze(1))  # (B, 1)
        rows, cols = known.lookup(chunk[:, 0], chunk[:, 1])
        filter_scores_(scores, rows, cols)
        scores.scatter_(1, targets.unsqueeze(1), true)  # restore the true answer
        parts.append(ranks_from_scores(scores, targets))
        start += len(chunk)
    return Ranks.cat(parts)


def evaluate_kge(
    model: KgeModel,
    triples: torch.Tensor,
    known: KnownAnswers,
    *,
    ties: str = "realistic",
    batch_size: int | None = None,
) -> dict:
    """Filtered MRR, MR, Hits@1/3/10 for ``(n, 3)`` triples, both directions.

    Returns:
        ``{"mrr", "mr", "hits@1", "hits@3", "hits@10", "num_queries", "head": {...},
        "tail": {...}}``; overall values average the 2n queries.
    """
    was_training = model.training
    model.eval()
    try:
        queries = as_queries(triples, model.num_relations)  # (2n, 3)
        ranks = rank_queries(model, queries, known, batch_size=batch_size).get(ties)
    finally:
        model.train(was_training)
    n = len(triples)
    out: dict = metrics_from_ranks(ranks)
    out["num_queries"] = len(queries)
    out["tail"] = metrics_from_ranks(ranks[:n])
    out["head"] = metrics_from_ranks(ranks[n:])
    return out


def known_answers(all_triples: torch.Tensor, num_relations: int) -> KnownAnswers:
    """Filter index from every known triple (train + valid + test), both directions."""
    return KnownAnswers(
        queries=as_queries(all_triples, num_relations), num_relation_slots=2 * num_relations
    )
