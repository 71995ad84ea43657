"""Rank metrics broken down: by direction (tail / head queries) and by relation.

Queries come as :func:`embedlab.evaluation.queries.as_queries` lays them out for ``n`` triples:
rows ``0..n-1`` are tail queries ``(h, r, ?)``, rows ``n..2n-1`` head queries ``(?, r, t)``
(asked as ``(t, r + R, ?)``). The per-relation breakdown follows LibKGE's
``metrics_per.relation_type`` idea, keyed by relation label rather than by type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from embedlab.evaluation.adjusted import adjusted_metrics
from embedlab.evaluation.ranking import metrics_from_ranks


def summary(ranks: torch.Tensor, num_candidates: torch.Tensor) -> dict[str, Any]:
    """MRR, MR, Hits@1/3/10, adjusted MRR, AMRI and ``num_queries`` of ``(Q,)`` ranks with their
    ``(Q,)`` candidate counts (:func:`metrics_from_ranks`, :func:`adjusted_metrics`)."""
    out: dict[str, Any] = metrics_from_ranks(ranks)
    out.update(adjusted_metrics(ranks, num_candidates))
    out["num_queries"] = int(ranks.numel())
    return out


def direction_metrics(ranks: torch.Tensor, num_candidates: torch.Tensor) -> dict[str, Any]:
    """:func:`summary` of all ``(2n,)`` queries (both directions averaged), plus ``tail`` (the
    first ``n``) and ``head`` (the last ``n``) without their own ``num_queries``.

    Raises:
        ValueError: an odd number of queries (not both directions of each triple).
    """
    if ranks.numel() % 2:
        raise ValueError(f"{ranks.numel()} queries: expected both directions of each triple")
    n = ranks.numel() // 2
    out = summary(ranks, num_candidates)
    for name, part in (("tail", slice(0, n)), ("head", slice(n, None))):
        one = summary(ranks[part], num_candidates[part])
        del one["num_queries"]
        out[name] = one
    return out


def by_relation(
    ranks: torch.Tensor,
    num_candidates: torch.Tensor,
    relations: torch.Tensor,
    labels: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """:func:`direction_metrics` of each relation's queries, keyed by relation label.

    Args:
        ranks, num_candidates: ``(2n,)`` in :func:`~embedlab.evaluation.queries.as_queries`
            order.
        relations: ``(n,)`` int64 forward relation id ``r < R`` of each triple.
        labels: the ``R`` relation labels (``KgDataset.relation_ids``).

    Returns:
        ``{label: {"mrr", "mr", "hits@k", "adjusted_mrr", "amri", "num_queries", "tail",
        "head"}}`` in relation-id order; relations without triples in the split are left out.
        ``num_queries`` sums to ``2n``.

    Raises:
        ValueError: ``relations`` does not hold one id per triple, or an id has no label.
    """
    n = relations.numel()
    if ranks.numel() != 2 * n:
        raise ValueError(f"{ranks.numel()} queries for {n} triples: expected {2 * n}")
    if n and int(relations.max()) >= len(labels):
        raise ValueError(f"relation id {int(relations.max())} has no label ({len(labels)} given)")
    relations = relations.to(ranks.device)
    ids, counts = torch.unique(relations, sorted=True, return_counts=True)
    order = torch.argsort(relations, stable=True)  # triples grouped by relation  # (n,)
    out: dict[str, dict[str, Any]] = {}
    for rel, rows in zip(ids.tolist(), order.split(counts.tolist()), strict=True):
        both = torch.cat([rows, rows + n])  # tail queries, then head queries
        out[labels[rel]] = direction_metrics(ranks[both], num_candidates[both])
    return out


def relation_table(per_relation: dict[str, dict[str, Any]], *, title: str = "") -> str:
    """A plain-text table of :func:`by_relation`'s output: one row per relation.

    Columns: triples (= head queries = tail queries), MRR and Hits@10 over both directions, head
    and tail; the label comes last so that long labels (FB15k-237) do not break the columns.
    """
    header = (
        f"{'triples':>7}  {'MRR':>6}  {'MRR(h)':>6}  {'MRR(t)':>6}  "
        f"{'H@10':>6}  {'H@10(h)':>7}  {'H@10(t)':>7}  relation"
    )
    lines = [title] if title else []
    lines.append(header)
    for label, m in per_relation.items():
        head, tail = m["head"], m["tail"]
        lines.append(
            f"{m['num_queries'] // 2:>7d}  {m['mrr']:6.4f}  {head['mrr']:6.4f}  "
            f"{tail['mrr']:6.4f}  {m['hits@10']:6.4f}  {head['hits@10']:7.4f}  "
            f"{tail['hits@10']:7.4f}  {label}"
        )
    return "\n".join(lines)
