"""Oracle: batched filtered ranks == a naive per-query Python loop, with deliberate ties."""

from __future__ import annotations

import pytest
import torch

from embedlab.evaluation.filtering import KnownAnswers
from embedlab.evaluation.kge_eval import evaluate_kge, known_answers, rank_queries
from embedlab.evaluation.queries import as_queries
from embedlab.evaluation.ranking import metrics_from_ranks, ranks_from_scores
from embedlab.kge.config import build_config
from embedlab.kge.model import KgeModel


def test_tie_semantics_hand_example() -> None:
    scores = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.0]])
    ranks = ranks_from_scores(scores, torch.tensor([2]))
    assert ranks.optimistic.item() == 1 and ranks.pessimistic.item() == 3
    assert ranks.realistic.item() == 2


def test_metrics_hand_example() -> None:
    m = metrics_from_ranks(torch.tensor([1.0, 2.0, 4.0, 20.0]))
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0.25 + 0.05) / 4)
    assert m["mr"] == pytest.approx(6.75)
    assert m["hits@1"] == 0.25 and m["hits@3"] == 0.5 and m["hits@10"] == 0.75


def test_known_answers_lookup_matches_sets() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.stack(
        [
            torch.randint(0, 6, (60,), generator=g),
            torch.randint(0, 4, (60,), generator=g),
            torch.randint(0, 6, (60,), generator=g),
        ],
        1,
    )
    known = KnownAnswers(queries=q, num_relation_slots=4)
    truth: dict[tuple[int, int], set[int]] = {}
    for s, r, o in q.tolist():
        truth.setdefault((s, r), set()).add(o)
    subj, rel = torch.arange(6).repeat_interleave(4), torch.arange(4).repeat(6)
    rows, cols = known.lookup(subj, rel)
    got: dict[tuple[int, int], set[int]] = {}
    for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
        got.setdefault((int(subj[row]), int(rel[row])), set()).add(col)
    assert got == truth


def _naive_ranks(
    model: KgeModel, queries: torch.Tensor, all_queries: torch.Tensor
) -> list[tuple[float, float]]:
    out = []
    known = {(s, r, o) for s, r, o in all_queries.tolist()}
    with torch.no_grad():
        for s, r, o in queries.tolist():
            scores = model.score_tails(torch.tensor([s]), torch.tensor([r]))[0]
            true = scores[o].item()
            higher = ties = 0
            for e in range(model.num_entities):
                if e == o or (s, r, e) in known:
                    continue
                v = scores[e].item()
                higher += v > true
                ties += v == true
            out.append((1.0 + higher, 1.0 + higher + ties))
    return out


@pytest.mark.parametrize("model_name", ["distmult", "complex"])
@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_batched_filtered_ranks_equal_naive_loop(model_name: str, batch_size: int) -> None:
    torch.manual_seed(0)
    n_ent, n_rel = 15, 3
    cfg = build_config(overrides=[f"model.name={model_name}", "model.dim=4"])
    model = KgeModel(num_entities=n_ent, num_relations=n_rel, config=cfg).eval()
    with torch.no_grad():  # small integers: many exact ties
        model.entities.weight.copy_(torch.randint(-1, 2, model.entities.weight.shape).float())
        model.relations.weight.copy_(torch.randint(-1, 2, model.relations.weight.shape).float())
    g = torch.Generator().manual_seed(1)
    triples = torch.stack(
        [
            torch.randint(0, n_ent, (40,), generator=g),
            torch.randint(0, n_rel, (40,), generator=g),
            torch.randint(0, n_ent, (40,), generator=g),
        ],
        1,
    )
    known = known_answers(triples, n_rel)
    test = triples[:12]
    queries = as_queries(test, n_rel)
    ranks = rank_queries(model, queries, known, batch_size=batch_size)
    naive = _naive_ranks(model, queries, as_queries(triples, n_rel))
    assert (ranks.pessimistic > ranks.optimistic).any(), "test data should contain ties"
    assert ranks.optimistic.tolist() == [o for o, _ in naive]
    assert ranks.pessimistic.tolist() == [p for _, p in naive]
    metrics = evaluate_kge(model, test, known, batch_size=batch_size)
    assert metrics["num_queries"] == 24
    expected_mrr = sum(2.0 / (o + p) for o, p in naive) / len(naive)
    assert metrics["mrr"] == pytest.approx(expected_mrr)
