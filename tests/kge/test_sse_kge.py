"""SSE on KGE tables: the training graph, which lookups are replaced, and end-to-end training."""

from __future__ import annotations

import pytest
import torch

from embedlab.datasets.kg import load_kg
from embedlab.errors import UserError
from embedlab.kge.config import build_config
from embedlab.kge.run import build_model, train_run
from tests.conftest import fast_config


def _model(*over: str):
    ds = load_kg("nations")
    cfg = build_config(overrides=["dataset=nations", "model.name=distmult", "model.dim=8", *over])
    torch.manual_seed(0)
    return build_model(cfg, ds), ds


def test_entity_graph_is_the_training_graph() -> None:
    model, ds = _model("entity_embedding.sse.kind=graph", "entity_embedding.sse.p=0.5")
    sse = model.entities.sse
    assert sse is not None and sse.has_graph
    train = ds.splits["train"]
    n = ds.num_entities
    expected = {(h, t) for h, _, t in train.tolist() if h != t}
    expected |= {(t, h) for h, t in expected}
    got = {(k // n, k % n) for k in sse.edge_keys.tolist()}
    assert got == expected


def test_sse_replaces_queries_not_candidates() -> None:
    model, _ = _model("entity_embedding.sse.kind=se", "entity_embedding.sse.p=1.0",
                      "relation_embedding.sse.kind=se", "relation_embedding.sse.p=1.0")  # fmt: skip
    model.train()
    subjects, relations = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2])
    candidates = torch.tensor([[3, 4], [5, 6], [7, 8]])
    trained = model.score_candidates(subjects, relations, candidates)
    model.eval()
    assert not torch.allclose(trained, model.score_candidates(subjects, relations, candidates))
    # candidates untouched: scores equal those of the replaced query against the same rows
    e, r = model.entities.weight, model.relations.weight
    for i in range(3):
        rows = e[candidates[i]]  # (2, d)
        match = [
            torch.allclose(trained[i], (e[a] * r[b] * rows).sum(-1))
            for a in range(e.shape[0])
            for b in range(r.shape[0])
        ]
        assert any(match)


def test_relation_graph_and_foreign_entity_graph_are_refused() -> None:
    with pytest.raises(UserError, match="no graph over relations"):
        _model("relation_embedding.sse.kind=graph")
    with pytest.raises(UserError, match="training graph"):
        _model("entity_embedding.sse.kind=graph", "entity_embedding.sse.graph=age")


@pytest.mark.parametrize("kind", ["se", "graph"])
def test_sse_kge_trains_nations(kind: str, tmp_path) -> None:
    over = {"entity_embedding.sse.kind": kind, "entity_embedding.sse.p": 0.05,
            "relation_embedding.sse.kind": "se", "relation_embedding.sse.p": 0.05,
            "train.max_epochs": 30, "eval.every": 10}  # fmt: skip
    metrics = train_run(fast_config("nations", **over), tmp_path / "run")
    assert metrics["test"]["mrr"] > 0.5
