"""Raw ranks and the per-relation breakdown against per-query Python loops."""

from __future__ import annotations

import pytest
import torch

from embedlab.evaluation.breakdown import by_relation, direction_metrics, relation_table
from embedlab.evaluation.kge_eval import evaluate_kge, known_answers, rank_queries_with_raw
from embedlab.evaluation.queries import as_queries
from embedlab.kge.config import build_config
from embedlab.kge.model import KgeModel

N_ENT, N_REL = 15, 3


def _tied_model() -> KgeModel:
    torch.manual_seed(0)
    cfg = build_config(overrides=["model.name=distmult", "model.dim=4"])
    model = KgeModel(num_entities=N_ENT, num_relations=N_REL, config=cfg).eval()
    with torch.no_grad():  # small integers: many exact ties
        model.entities.weight.copy_(torch.randint(-1, 2, model.entities.weight.shape).float())
        model.relations.weight.copy_(torch.randint(-1, 2, model.relations.weight.shape).float())
    return model


def _triples(n: int = 60) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    cols = [torch.randint(0, k, (n,), generator=g) for k in (N_ENT, N_REL, N_ENT)]
    return torch.stack(cols, 1)


def _naive_raw(model: KgeModel, queries: torch.Tensor) -> list[float]:
    """Realistic raw ranks: every other entity is a candidate, known answers included."""
    out = []
    with torch.no_grad():
        for s, r, o in queries.tolist():
            scores = model.score_tails(torch.tensor([s]), torch.tensor([r]))[0].tolist()
            higher = sum(v > scores[o] for e, v in enumerate(scores) if e != o)
            ties = sum(v == scores[o] for e, v in enumerate(scores) if e != o)
            out.append(1.0 + higher + ties / 2)
    return out


@pytest.mark.parametrize("batch_size", [1, 4, 1000])
def test_raw_ranks_equal_naive_loop_and_bound_filtered(batch_size: int) -> None:
    model, triples = _tied_model(), _triples()
    known = known_answers(triples, N_REL)
    queries = as_queries(triples[:20], N_REL)
    filtered, raw = rank_queries_with_raw(model, queries, known, batch_size=batch_size)
    assert raw.realistic.tolist() == _naive_raw(model, queries)
    assert (raw.optimistic >= filtered.optimistic).all()
    assert (raw.pessimistic >= filtered.pessimistic).all()
    assert (raw.realistic > filtered.realistic).any(), "some known answer should outrank"
    assert (raw.num_candidates == N_ENT).all()
    assert (filtered.num_candidates <= N_ENT).all() and (filtered.num_candidates < N_ENT).any()


def test_evaluate_kge_raw_and_by_relation_equal_per_query_grouping() -> None:
    model, triples = _tied_model(), _triples()
    known = known_answers(triples, N_REL)
    test = triples[:25]
    labels = ["r_a", "r_b", "r_c"]
    m = evaluate_kge(model, test, known, batch_size=7, raw=True, relation_labels=labels)
    queries = as_queries(test, N_REL)
    filtered, raw = rank_queries_with_raw(model, queries, known)
    assert m["raw"]["mrr"] == pytest.approx(float((1 / raw.realistic).mean()))
    assert m["raw"]["mrr"] <= m["mrr"] and m["raw"]["mr"] >= m["mr"]
    per = m["by_relation"]
    assert sum(v["num_queries"] for v in per.values()) == m["num_queries"] == 50
    n = len(test)
    for rel, label in enumerate(labels):
        rows = [i for i in range(n) if int(test[i, 1]) == rel]
        if not rows:
            assert label not in per
            continue
        tail = [float(filtered.realistic[i]) for i in rows]
        head = [float(filtered.realistic[n + i]) for i in rows]
        got = per[label]
        assert got["num_queries"] == 2 * len(rows)
        assert got["tail"]["mrr"] == pytest.approx(sum(1 / r for r in tail) / len(tail))
        assert got["head"]["mrr"] == pytest.approx(sum(1 / r for r in head) / len(head))
        both = tail + head
        assert got["mrr"] == pytest.approx(sum(1 / r for r in both) / len(both))
        assert got["hits@10"] == pytest.approx(sum(r <= 10 for r in both) / len(both))
        assert got["mr"] == pytest.approx(sum(both) / len(both))
    # without the options the output keeps its keys (validation during training)
    plain = evaluate_kge(model, test, known)
    assert "raw" not in plain and "by_relation" not in plain
    assert plain["mrr"] == pytest.approx(m["mrr"])


def test_direction_and_relation_hand_example() -> None:
    # triples of relations [1, 0, 1]; tail ranks 1, 2, 4; head ranks 3, 1, 1
    ranks = torch.tensor([1.0, 2.0, 4.0, 3.0, 1.0, 1.0])
    cand = torch.tensor([5, 5, 5, 5, 5, 5])
    d = direction_metrics(ranks, cand)
    assert d["num_queries"] == 6 and "num_queries" not in d["tail"]
    assert d["tail"]["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4) / 3)
    assert d["head"]["mr"] == pytest.approx(5 / 3)
    per = by_relation(ranks, cand, torch.tensor([1, 0, 1]), ["x", "y"])
    assert list(per) == ["x", "y"]
    assert per["x"]["num_queries"] == 2 and per["x"]["mrr"] == pytest.approx((1 / 2 + 1) / 2)
    assert per["y"]["tail"]["mrr"] == pytest.approx((1 + 1 / 4) / 2)
    assert per["y"]["head"]["hits@1"] == pytest.approx(0.5)
    table = relation_table(per).splitlines()
    assert len(table) == 3 and table[1].split()[0] == "1" and table[2].endswith("y")
    with pytest.raises(ValueError, match="no label"):
        by_relation(ranks, cand, torch.tensor([1, 0, 2]), ["x", "y"])
    with pytest.raises(ValueError, match="expected 4"):
        by_relation(ranks, cand, torch.tensor([1, 0]), ["x", "y"])
