"""KGE predictions (KgePredictor, what embedlab.load_run returns for KGE runs) against brute-force oracles: the training
file for filtering, numpy ComplEx scores of the exported tables for the ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.datasets.resolve import resolve_dataset_dir
from embedlab.errors import UserError
from embedlab.kge.predict import KgePredictor
from embedlab.kge.run import train_run
from tests.conftest import fast_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "nations"
    over = {"model.name": "complex", "train.max_epochs": 1, "eval.every": 1}
    train_run(fast_config("nations", **over), out, progress=False)
    return out


@pytest.fixture(scope="module")
def predictor(run_dir: Path) -> KgePredictor:
    return KgePredictor.from_run(run_dir)


def _split_file(name: str) -> set[tuple[str, str, str]]:
    """The labelled triples of a nations split, read from the file (not through embedlab)."""
    text = (resolve_dataset_dir("nations") / f"{name}.txt").read_text(encoding="utf-8")
    return {tuple(line.split("\t")) for line in text.splitlines() if line.strip()}


def _oracle_scores(p: KgePredictor, given: str, relation: str, side: str) -> dict[str, float]:
    """ComplEx ``Re(<s, w, conj(o)>)`` of every answer, float64 numpy from ``embeddings()``;
    head queries by the reciprocal relation."""
    emb = p.embeddings()
    half = emb.entities.shape[1] // 2
    z = emb.entities[:, :half].astype(np.float64) + 1j * emb.entities[:, half:]  # (N, d/2)
    table = emb.relations if side == "tail" else emb.reciprocal_relations
    rel = table[emb.relation_labels.index(relation)].astype(np.float64)
    w = rel[:half] + 1j * rel[half:]
    s = z[emb.entity_labels.index(given)]
    scores = np.real((s * w) @ np.conj(z).T)  # (N,)
    return dict(zip(emb.entity_labels, scores.tolist(), strict=True))


def _queries(p: KgePredictor) -> list[tuple[str, str, str]]:
    """Every (entity, relation) pair of the first 15 relations, in both directions."""
    out = []
    for r in p.dataset.relation_ids[:15]:
        for e in p.dataset.entity_ids:
            out += [(e, r, "?"), ("?", r, e)]
    return out


def _known(train: set[tuple[str, str, str]], query: tuple[str, str, str]) -> set[str]:
    h, r, t = query
    if t == "?":
        return {o for s, rel, o in train if s == h and rel == r}
    return {s for s, rel, o in train if o == t and rel == r}


def test_filter_known_never_returns_a_training_triple(predictor: KgePredictor) -> None:
    train = _split_file("train")
    queries = _queries(predictor)
    n = predictor.dataset.num_entities
    result = predictor.predict(queries, k=n)  # every answer left after filtering
    by_query: dict[int, list[str]] = {}
    for a in result:
        triple = (a.entity, a.relation, a.tail) if a.head == "?" else (a.head, a.relation, a.entity)
        assert triple not in train, triple
        by_query.setdefault(a.query, []).append(a.entity)
    removed: dict[int, set[str]] = {}
    for g in result.removed:
        assert g.split == "train"
        removed.setdefault(g.query, set()).add(g.entity)
    assert sum(len(_known(train, q)) for q in queries) > 500  # the filter has work to do
    for i, q in enumerate(queries):
        known = _known(train, q)
        assert removed.get(i, set()) == known, q
        assert set(by_query.get(i, [])) == set(predictor.dataset.entity_ids) - known, q
    assert result.filtered == ("train",)


def test_filter_all_removes_valid_and_test_answers_too(predictor: KgePredictor) -> None:
    splits = {name: _split_file(name) for name in ("train", "valid", "test")}
    everything = set().union(*splits.values())
    queries = _queries(predictor)
    result = predictor.predict(queries, k=3, filter_known="all")
    for a in result:
        triple = (a.entity, a.relation, a.tail) if a.head == "?" else (a.head, a.relation, a.entity)
        assert triple not in everything
    for g in result.removed:
        triple = (g.entity, g.relation, g.tail) if g.head == "?" else (g.head, g.relation, g.entity)
        first = next(name for name in ("train", "valid", "test") if triple in splits[name])
        assert g.split == first
    assert {g.split for g in result.removed} == {"train", "valid", "test"}


@pytest.mark.parametrize("filter_known", [True, False])
def test_top_k_equals_brute_force_ranking(predictor: KgePredictor, filter_known: bool) -> None:
    train = _split_file("train")
    checked = 0
    for query in _queries(predictor)[::7]:
        h, r, t = query
        side = "tail" if t == "?" else "head"
        scores = _oracle_scores(predictor, h if side == "tail" else t, r, side)
        known = _known(train, query) if filter_known else set()
        ranking = sorted((e for e in scores if e not in known), key=lambda e: -scores[e])
        k = 5
        got = predictor.predict([query], k=k, filter_known=filter_known)
        assert [a.rank for a in got] == list(range(1, min(k, len(ranking)) + 1))
        for a in got:
            assert a.score == pytest.approx(scores[a.entity], abs=1e-5)
        gaps = np.diff([scores[e] for e in ranking[: k + 1]])
        if len(gaps) and np.abs(gaps).min() < 1e-5:
            continue  # a near-tie: float32 may order it either way
        assert [a.entity for a in got] == ranking[:k], query
        assert [g.entity for g in got.removed] == sorted(known, key=lambda e: -scores[e])
        checked += 1
    assert checked > 50


def test_scalar_and_list_arguments_and_ids(predictor: KgePredictor) -> None:
    ents, rels = predictor.dataset.entity_ids, predictor.dataset.relation_ids
    one = predictor.predict_tails("brazil", "embassy", k=4)
    by_id = predictor.predict_tails(ents.index("brazil"), rels.index("embassy"), k=4)
    assert [(a.entity, a.score) for a in one] == [(a.entity, a.score) for a in by_id]
    assert one[0].head == "brazil" and one[0].tail == "?" and one[0].relation == "embassy"
    many = predictor.predict_heads(["embassy", "treaties"], "usa", k=2)
    assert [a.query for a in many] == [0, 0, 1, 1]
    assert [a.relation for a in many] == ["embassy", "embassy", "treaties", "treaties"]
    single = predictor.predict_heads("treaties", "usa", k=2)
    assert [a.entity for a in many][2:] == [a.entity for a in single]


def test_score_matches_the_ranking_scores(predictor: KgePredictor) -> None:
    got = predictor.predict_tails("brazil", "embassy", k=14, filter_known=False)
    triples = [("brazil", "embassy", a.entity) for a in got]
    scores = predictor.score(triples)
    assert scores.shape == (14,)
    np.testing.assert_allclose(scores, [a.score for a in got], rtol=1e-5, atol=1e-6)
    ids = np.array([[predictor.entities.id(h), predictor.relations.id(r), predictor.entities.id(t)]
                    for h, r, t in triples])  # fmt: skip
    np.testing.assert_array_equal(predictor.score(ids), scores)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda p: p.predict_tails("atlantis", "embassy"), "'atlantis' in dataset nations"),
        (lambda p: p.predict_tails("brazil", "embasy"), "did you mean 'embassy'"),
        (lambda p: p.predict_heads("embassy", 14), "entity id 14 is out of range"),
        (lambda p: p.predict_tails(True, "embassy"), "give a label (str) or a row id (int)"),
        (lambda p: p.predict_tails("brazil", "embassy", k=0), "k must be at least 1"),
        (lambda p: p.predict_tails("brazil", "embassy", filter_known="tain"), "filter_known"),
        (lambda p: p.predict([("brazil", "embassy", "usa")]), "exactly one of head, tail"),
        (lambda p: p.predict_tails(["brazil", "usa"], ["embassy"] * 3), "lists of one length"),
        (lambda p: p.score([("brazil", "embassy")]), "expected (head, relation, tail)"),
    ],
)
def test_user_errors(predictor: KgePredictor, call, needle: str) -> None:
    with pytest.raises(UserError) as info:
        call(predictor)
    assert needle in str(info.value)


def test_embeddings_equal_the_kge_export(
    run_dir: Path, predictor: KgePredictor, tmp_path: Path
) -> None:
    from embedlab.cli.main import main

    assert main(["kge", "export", str(run_dir), str(tmp_path / "e.npz")]) == 0
    data = np.load(tmp_path / "e.npz")
    emb = predictor.embeddings()
    np.testing.assert_array_equal(data["entity_embeddings"], emb.entities)
    np.testing.assert_array_equal(data["relation_embeddings"], emb.relations)
    np.testing.assert_array_equal(data["reciprocal_relation_embeddings"], emb.reciprocal_relations)
    assert list(data["entity_ids"]) == emb.entity_labels
    assert list(data["relation_ids"]) == emb.relation_labels
