"""Train/test KL of paper 002's figure 2 (``embedlab.losses.kl``): hand-computed values, naive
loops, the epsilon floor, the dataset command and its figure."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from embedlab.losses.kl import DEFAULT_EPSILON, dataset_kl, figure2, kl_train_test

EPS = 1e-3


def test_kl_hand_computed() -> None:
    """3 entities, 1 relation. train: (0,0,1), (0,0,2); test: (0,0,1).
    Tail query (0, r, ?): P ∝ p(y|r) + p(0|y) = [0, .5, .5] + [0, 1, 1] -> [0, .5, .5];
    Q ∝ [0, 1, 0] + [0, 1, 0] -> [0, 1, 0]. Head query (?, r, 1): P ∝ [1, 0, 0] + [.5, 0, 0]
    -> [1, 0, 0] = Q."""
    train = torch.tensor([[0, 0, 1], [0, 0, 2]])
    test = torch.tensor([[0, 0, 1]])
    q_in, q_out = (1 - EPS) + EPS / 3, EPS / 3
    tail = 0.5 * math.log(0.5 / q_in) + 0.5 * math.log(0.5 / q_out)
    head = math.log(1 / q_in)
    res = kl_train_test(train, test, num_entities=3, epsilon=EPS)
    assert res.kl_tail == pytest.approx(tail, rel=1e-12)
    assert res.kl_head == pytest.approx(head, rel=1e-12)
    assert res.kl == pytest.approx((tail + head) / 2, rel=1e-12)
    assert (res.queries, res.distinct_queries, res.skipped) == (2, 2, 0)


def _random_triples(rng: random.Random, n: int, *, entities: int, relations: int) -> torch.Tensor:
    rows = [
        (rng.randrange(entities), rng.randrange(relations), rng.randrange(entities))
        for _ in range(n)
    ]
    return torch.tensor(rows)


def test_kl_identical_splits_is_at_the_epsilon_floor() -> None:
    triples = _random_triples(random.Random(0), 60, entities=9, relations=3)
    res = kl_train_test(triples, triples, num_entities=9, epsilon=EPS)
    assert -1e-12 <= res.kl <= -math.log(1 - EPS) + 1e-12


def _naive_kl(train: list, test: list, n: int, eps: float) -> tuple[float, int]:
    """The recipe of kl_train_test's docstring, one query and one candidate at a time."""

    def dist(split: list, rel: int, g: int, yc: int, gc: int) -> list[float] | None:
        in_rel = [t for t in split if t[1] == rel]
        s = []
        for y in range(n):
            a = sum(t[yc] == y for t in in_rel) / len(in_rel) if in_rel else 0.0
            n_y = sum(t[yc] == y for t in split)
            b = sum(t[yc] == y and t[gc] == g for t in split) / n_y if n_y else 0.0
            s.append(a + b)
        z = sum(s)
        return [v / z for v in s] if z else None

    total, kept = 0.0, 0
    for t in test:
        for yc, gc in ((0, 2), (2, 0)):
            p, q = dist(train, t[1], t[gc], yc, gc), dist(test, t[1], t[gc], yc, gc)
            if p is None or q is None:
                continue
            total += sum(
                pi * math.log(pi / ((1 - eps) * qi + eps / n))
                for pi, qi in zip(p, q, strict=True)
                if pi
            )
            kept += 1
    return total / kept, kept


def test_kl_matches_naive_loops() -> None:
    rng = random.Random(3)
    train = _random_triples(rng, 50, entities=8, relations=3)
    test = _random_triples(rng, 15, entities=8, relations=4)  # relation 3 only in test
    test[0] = torch.tensor([7, 3, 7])  # unseen relation, and make entity 7 unseen in train
    train[train == 7] = 6
    train[:, 1] = train[:, 1].clamp(max=2)
    want, kept = _naive_kl(train.tolist(), test.tolist(), 8, EPS)
    res = kl_train_test(train, test, num_entities=8, epsilon=EPS)
    assert res.kl == pytest.approx(want, rel=1e-10)
    assert res.queries == kept and res.skipped == 2 * len(test) - kept > 0


def test_kl_rejects_bad_input() -> None:
    t = torch.tensor([[0, 0, 1]])
    with pytest.raises(ValueError, match="epsilon"):
        kl_train_test(t, t, num_entities=2, epsilon=0.0)
    with pytest.raises(ValueError, match="outside"):
        kl_train_test(t, t, num_entities=1)
    with pytest.raises(ValueError, match=r"\(M, 3\)"):
        kl_train_test(t[:, :2], t, num_entities=2)


def test_dataset_kl_and_figure2(tiny_kg: Path, tmp_path: Path) -> None:
    """The KL of a dataset directory equals the naive loops on its train and test files, with
    ids of our own (the KL does not depend on how entities and relations are numbered)."""
    res = dataset_kl(str(tiny_kg))
    labelled = {
        split: [line.split("\t") for line in (tiny_kg / f"{split}.txt").read_text().splitlines()]
        for split in ("train", "valid", "test")
    }
    every = [t for part in labelled.values() for t in part]
    entities = sorted({h for h, _, _ in every} | {t for _, _, t in every}, reverse=True)
    relations = sorted({r for _, r, _ in every}, reverse=True)
    ids = {split: [[entities.index(h), relations.index(r), entities.index(t)]
                   for h, r, t in part] for split, part in labelled.items()}  # fmt: skip
    want, kept = _naive_kl(ids["train"], ids["test"], len(entities), DEFAULT_EPSILON)
    assert res.kl == pytest.approx(want, rel=1e-10)
    assert res.queries == kept and res.skipped == 2 * len(ids["test"]) - kept
    out = figure2([res, res], tmp_path / "fig2.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- CLI
