"""Training types against naive per-query computations; samplers against their distributions."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

import pytest
import torch

from embedlab.datasets.kg import load_kg
from embedlab.evaluation.kge_eval import known_answers
from embedlab.kge.config import build_config
from embedlab.kge.frequencies import Frequencies
from embedlab.kge.model import KgeModel
from embedlab.kge.sampling import NegativeSampler
from embedlab.kge.training_types import build_task
from embedlab.losses import ns, sans, sce


def _task(ttype: str, loss: str, model: str = "distmult", **extra: object):
    ds = load_kg("nations")
    over = [f"model.name={model}", "model.dim=8", "dataset=nations", f"train.type={ttype}"]
    cfg = build_config(
        overrides=over + [f"loss.name={loss}"] + [f"{k}={v}" for k, v in extra.items()]
    )
    torch.manual_seed(0)
    m = KgeModel(num_entities=ds.num_entities, num_relations=ds.num_relations, config=cfg).eval()
    m.requires_grad_(False)
    known = known_answers(ds.all_triples(), ds.num_relations)
    return build_task(model=m, dataset=ds, known=known, config=cfg), ds


def _train_answers(ds, s: int, r: int) -> set[int]:
    R = ds.num_relations
    tr = ds.splits["train"].tolist()
    if r < R:
        return {t for h, rr, t in tr if h == s and rr == r}
    return {h for h, rr, t in tr if t == s and rr == r - R}


@pytest.mark.parametrize("loss", ["sce", "ns"])
def test_kvsall_equals_per_query_loop(loss: str) -> None:
    task, ds = _task("KvsAll", loss)
    batch = next(task.batches(torch.Generator().manual_seed(0)))[:10]
    value, rows = task.loss(batch)
    assert rows == 10
    expected = 0.0
    for s, r in batch.tolist():
        scores = task.model.score_tails(torch.tensor([s]), torch.tensor([r]))[0]
        answers = sorted(_train_answers(ds, s, r))
        assert answers, "KvsAll queries come from the training data"
        if loss == "sce":
            p = torch.zeros_like(scores)
            p[answers] = 1 / len(answers)
            expected += float(-(p * scores.detach().log_softmax(0)).sum())
        else:
            pos = torch.zeros_like(scores, dtype=torch.bool)
            pos[answers] = True
            expected += float(ns(scores.unsqueeze(0), pos.unsqueeze(0)))
    assert value.item() == pytest.approx(expected / 10, rel=1e-5)


@pytest.mark.parametrize("loss", ["ns", "sans", "sce"])
def test_negative_sampling_equals_per_row_formula(loss: str, monkeypatch) -> None:
    task, ds = _task(
        "negative_sampling", loss, **{"train.negatives.head": 2, "train.negatives.tail": 3}
    )
    fixed = {2: torch.tensor([[1, 4]] * 5), 3: torch.tensor([[0, 2, 7]] * 5)}
    monkeypatch.setattr(task.sampler, "sample", lambda s, r, k: fixed[k])
    batch = ds.splits["train"][:5]
    value, rows = task.loss(batch)
    assert rows == 10
    R, expected = ds.num_relations, 0.0
    for h, r, t in batch.tolist():
        for s, rel, ans, negs in ((h, r, t, [0, 2, 7]), (t, r + R, h, [1, 4])):
            cand = torch.tensor([[ans, *negs]])
            scores = task.model.score_triples(
                torch.stack(
                    [torch.full((cand.shape[1],), s), torch.full((cand.shape[1],), rel), cand[0]], 1
                )
            ).unsqueeze(0)
            pos = torch.zeros_like(scores, dtype=torch.bool)
            pos[0, 0] = True
            if loss == "ns":
                expected += float(ns(scores, pos))
            elif loss == "sans":
                expected += float(sans(scores, pos, adversarial_temperature=1.0))
            else:
                expected += float(sce(scores, torch.tensor([0])))
    assert value.item() == pytest.approx(expected / 5, rel=1e-5)


@pytest.mark.parametrize("model", ["tucker", "rotate"])
@pytest.mark.parametrize("loss", ["ns", "sans", "ns_freq"])
def test_ns_losses_run_in_1vsall_mode(model: str, loss: str) -> None:
    task, ds = _task("1vsAll", loss, model)
    task.model.requires_grad_(True)
    value, rows = task.loss(ds.splits["train"][:4])
    assert rows == 8 and torch.isfinite(value)
    value.backward()
    assert all(p.grad is not None for p in task.model.parameters())


def test_uniform_and_frequency_samplers_match_their_distributions() -> None:
    ds = load_kg("nations")
    freq = Frequencies(
        train=ds.splits["train"], num_entities=ds.num_entities, num_relations=ds.num_relations
    )
    torch.manual_seed(0)
    n, draws = ds.num_entities, 200_000
    s = torch.zeros(draws // 100, dtype=torch.long)
    for power, rel in ((None, 0), (1.0, 0), (0.75, ds.num_relations)):
        sampler = NegativeSampler(num_entities=n, frequencies=freq, power=power)
        r = torch.full_like(s, rel)
        counts = torch.bincount(sampler.sample(s, r, 100).flatten(), minlength=n).double()
        expected = (
            torch.full((n,), 1 / n, dtype=torch.float64)
            if power is None
            else freq.noise(r[:1], power=power)[0].double()
        )
        # each frequency within 5 standard errors of its probability
        se = (expected * (1 - expected) / draws).sqrt()
        assert ((counts / draws - expected).abs() <= 5 * se).all()


def test_filtered_sampling_never_returns_training_answers() -> None:
    ds = load_kg("nations")
    freq = Frequencies(
        train=ds.splits["train"], num_entities=ds.num_entities, num_relations=ds.num_relations
    )
    sampler = NegativeSampler(num_entities=ds.num_entities, frequencies=freq, filter=True)
    torch.manual_seed(0)
    h, r, _ = ds.splits["train"][:50].unbind(1)
    negs = sampler.sample(h, r, 20)
    for i in range(50):
        answers = _train_answers(ds, int(h[i]), int(r[i]))
        assert not answers & set(negs[i].tolist())
    unfiltered = NegativeSampler(num_entities=ds.num_entities, frequencies=freq)
    hits = freq.known.contains(h, r, unfiltered.sample(h, r, 20))
    assert hits.any(), "nations is dense: unfiltered samples do hit training answers"


def test_backward_correction_weights_are_count_ratios() -> None:
    ds = load_kg("nations")
    freq = Frequencies(
        train=ds.splits["train"], num_entities=ds.num_entities, num_relations=ds.num_relations
    )
    h, r, t = ds.splits["train"][:6].unbind(1)
    w = freq.backward_correction_weights(h, r, t)
    tr = ds.splits["train"]
    raw = torch.tensor(
        [
            float(((tr[:, 0] == hi) & (tr[:, 1] == ri)).sum()) / float((tr[:, 2] == ti).sum())
            for hi, ri, ti in zip(h.tolist(), r.tolist(), t.tolist(), strict=True)
        ]
    )
    ratio = w / raw.to(w.dtype)
    torch.testing.assert_close(ratio, ratio[:1].expand(6))  # equal up to one constant


# -- frequency-based losses (paper 002, §3.1.2 and eq. 16) against hand counts and loops ------
def _hand_noise(ds, power: float) -> dict[int, list[float]]:
    """``p_n(y) ∝ (count(y) + 1)^β`` of the corrupted slot, counted by hand: direction 0 (tail
    queries) counts entities as tails, direction 1 (reciprocal, head answers) as heads."""
    train = ds.splits["train"].tolist()
    counts = {0: Counter(t for _, _, t in train), 1: Counter(h for h, _, _ in train)}
    noise = {}
    for direction, count in counts.items():
        raw = [(count[e] + 1) ** power for e in range(ds.num_entities)]
        noise[direction] = [x / sum(raw) for x in raw]
    return noise


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _ns_row(scores: list[float], positive: list[bool], weights: list[float], gamma: float) -> float:
    """One row of eq. 6: ``-Σ_pos log σ(s + γ) - Σ_neg w log σ(-(s + γ))``."""
    total = 0.0
    for s, pos, w in zip(scores, positive, weights, strict=True):
        total -= _log_sigmoid(s + gamma) if pos else w * _log_sigmoid(-(s + gamma))
    return total


def _freq_weights(noise: list[float], positive: list[bool], reduction: str) -> list[float]:
    """Weighted reading: each negative's ``p_n`` over the row's negatives' total ``p_n``, times
    the number of negatives (``sum``) or 1 (``mean``); 0 on positives."""
    negatives = [p for p, pos in zip(noise, positive, strict=True) if not pos]
    scale = (len(negatives) if reduction == "sum" else 1.0) / sum(negatives)
    return [0.0 if pos else p * scale for p, pos in zip(noise, positive, strict=True)]


def _scores(task, s: int, r: int) -> list[float]:
    return task.model.score_tails(torch.tensor([s]), torch.tensor([r]))[0].tolist()


FREQ = {"loss.freq_power": 0.75, "loss.margin": 0.5}


@pytest.mark.parametrize("reading", ["sampled", "weighted"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("ttype", ["1vsAll", "KvsAll"])
def test_ns_freq_all_entities_equals_per_query_loop(
    ttype: str, reduction: str, reading: str
) -> None:
    """Scoring every entity, both readings weight the negatives by ``p_n`` (the sampled
    reading's expectation when all entities are negatives)."""
    extra = {**FREQ, "loss.negative_reduction": reduction, "loss.freq_reading": reading}
    task, ds = _task(ttype, "ns_freq", **extra)
    noise, R = _hand_noise(ds, 0.75), ds.num_relations
    if ttype == "1vsAll":
        batch = ds.splits["train"][:6]
        queries = [(h, r, {t}) for h, r, t in batch.tolist()]
        queries += [(t, r + R, {h}) for h, r, t in batch.tolist()]
    else:
        batch = next(task.batches(torch.Generator().manual_seed(0)))[:6]
        queries = [(s, r, _train_answers(ds, s, r)) for s, r in batch.tolist()]
    value, _ = task.loss(batch)
    expected = 0.0
    for s, r, answers in queries:
        positive = [e in answers for e in range(ds.num_entities)]
        weights = _freq_weights(noise[int(r >= R)], positive, reduction)
        expected += _ns_row(_scores(task, s, r), positive, weights, 0.5)
    assert value.item() == pytest.approx(expected / 6, rel=1e-5)


def test_ns_freq_weighted_negative_sampling_equals_per_row_loop(monkeypatch) -> None:
    extra = {**FREQ, "loss.freq_reading": "weighted"}
    extra |= {"train.negatives.head": 2, "train.negatives.tail": 3}
    task, ds = _task("negative_sampling", "ns_freq", **extra)
    fixed = {2: torch.tensor([[1, 4]] * 5), 3: torch.tensor([[0, 2, 0]] * 5)}  # uniform draws
    monkeypatch.setattr(task.sampler, "sample", lambda s, r, k: fixed[k])
    batch = ds.splits["train"][:5]
    value, rows = task.loss(batch)
    assert rows == 10
    noise, R, expected = _hand_noise(ds, 0.75), ds.num_relations, 0.0
    for h, r, t in batch.tolist():
        for s, rel, answer, negatives in ((h, r, t, [0, 2, 0]), (t, r + R, h, [1, 4])):
            candidates = [answer, *negatives]
            scores = _scores(task, s, rel)
            positive = [True] + [False] * len(negatives)
            row_noise = [noise[int(rel >= R)][c] for c in candidates]
            weights = _freq_weights(row_noise, positive, "sum")
            expected += _ns_row([scores[c] for c in candidates], positive, weights, 0.5)
    assert value.item() == pytest.approx(expected / 5, rel=1e-5)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Hundreds of tiny steps: one intra-op thread (two on a busy CPU are ~7x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_ns_freq_sampled_negative_sampling_draws_from_p_n(one_thread: None) -> None:
    """Sampled reading: the loss of each call is plain NS (weight 1) on the negatives drawn;
    the draws follow the hand-counted ``p_n`` and the loss averages to its expectation
    ``pos + k Σ_y p_n(y) (-log σ(-(s_y + γ)))`` per query (both within 5 standard errors)."""
    extra = {**FREQ, "loss.freq_reading": "sampled"}
    extra |= {"train.negatives.head": 2, "train.negatives.tail": 3}
    task, ds = _task("negative_sampling", "ns_freq", **extra)
    noise, R, n = _hand_noise(ds, 0.75), ds.num_relations, ds.num_entities
    B = 20
    batch = ds.splits["train"][:B]
    sides = [(h, r, t, 3) for h, r, t in batch.tolist()]
    sides += [(t, r + R, h, 2) for h, r, t in batch.tolist()]
    scores = {(s, rel): _scores(task, s, rel) for s, rel, _, _ in sides}
    draws: list[torch.Tensor] = []
    real = task.sampler.sample

    def recording(subjects, relations, k):
        out = real(subjects, relations, k)
        draws.append(out.clone())
        return out

    task.sampler.sample = recording
    torch.manual_seed(0)
    calls, values = 300, []
    counts = {0: [0] * n, 1: [0] * n}
    for _ in range(calls):
        draws.clear()
        value, _ = task.loss(batch)
        values.append(value.item())
        tail_draws, head_draws = draws  # tail side first, then the reciprocal head side
        got = 0.0
        for i, (s, rel, answer, _) in enumerate(sides):
            negatives = (tail_draws[i] if rel < R else head_draws[i - B]).tolist()
            for e in negatives:
                counts[int(rel >= R)][e] += 1
            cand = [answer, *negatives]
            positive = [True] + [False] * len(negatives)
            got += _ns_row([scores[s, rel][c] for c in cand], positive, [1.0] * len(cand), 0.5)
        assert math.isclose(value.item(), got / B, rel_tol=1e-5)
    for direction, k in ((0, 3), (1, 2)):
        draws_n = calls * B * k
        for e in range(n):
            p = noise[direction][e]
            se = math.sqrt(p * (1 - p) / draws_n)
            assert abs(counts[direction][e] / draws_n - p) <= 5 * se, (direction, e)
    expected = 0.0
    for s, rel, answer, k in sides:
        row, p_n = scores[s, rel], noise[int(rel >= R)]
        expected -= _log_sigmoid(row[answer] + 0.5)
        expected -= k * sum(p_n[e] * _log_sigmoid(-(row[e] + 0.5)) for e in range(n))
    expected /= B
    mean = sum(values) / calls
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (calls - 1))
    assert abs(mean - expected) <= 5 * std / math.sqrt(calls)


def _hand_bc_weights(ds) -> dict[tuple[int, int, int], float]:
    """eq. 16's ``#x / #y`` of every training query (both directions), scaled to mean 1 over
    them: ``#x`` the training answers of query x, ``#y`` the count of y in its slot."""
    train, R = ds.splits["train"].tolist(), ds.num_relations
    queries = [(h, r, t) for h, r, t in train] + [(t, r + R, h) for h, r, t in train]
    n_x = Counter((s, r) for s, r, _ in queries)
    n_y = {0: Counter(t for _, _, t in train), 1: Counter(h for h, _, _ in train)}
    raw = [n_x[s, r] / n_y[int(r >= R)][a] for s, r, a in queries]
    mean = sum(raw) / len(raw)
    return {q: x / mean for q, x in zip(queries, raw, strict=True)}


def test_backward_correction_weights_have_mean_one_and_equal_hand_counts() -> None:
    ds = load_kg("nations")
    freq = Frequencies(
        train=ds.splits["train"], num_entities=ds.num_entities, num_relations=ds.num_relations
    )
    want = _hand_bc_weights(ds)
    s, r, a = torch.tensor(list(want)).unbind(1)
    got = freq.backward_correction_weights(s, r, a).tolist()
    assert sum(got) / len(got) == pytest.approx(1.0, rel=1e-6)  # float32 weights
    assert got == pytest.approx(list(want.values()), rel=1e-6)
    assert max(got) / min(got) > 10  # far from uniform: the check can tell weights apart


def test_sce_bc_1vsall_equals_per_query_loop_with_hand_weights() -> None:
    task, ds = _task("1vsAll", "sce_bc")
    weights, R = _hand_bc_weights(ds), ds.num_relations
    batch = ds.splits["train"][:6]
    value, _ = task.loss(batch)
    expected = 0.0
    for h, r, t in batch.tolist():
        for s, rel, answer in ((h, r, t), (t, r + R, h)):
            scores = _scores(task, s, rel)
            log_z = math.log(sum(math.exp(x) for x in scores))
            expected += weights[s, rel, answer] * (log_z - scores[answer])
    assert value.item() == pytest.approx(expected / 6, rel=1e-5)


@pytest.mark.parametrize(
    ("ttype", "loss"),
    [("negative_sampling", "ns"), ("negative_sampling", "sans"), ("KvsAll", "sce_ls")],
)
def test_training_types_learn_nations(ttype: str, loss: str, tmp_path) -> None:
    """End to end: each training type beats a random ranking (MRR ≈ 0.23 for 14 entities) by far."""
    from embedlab.kge.run import train_run
    from tests.conftest import fast_config

    over = {"loss.name": loss, "train.type": ttype, "train.max_epochs": 40, "train.lr": 0.01,
            "train.batch_size": 128, "eval.every": 10}  # fmt: skip
    if ttype == "negative_sampling":
        over |= {"train.negatives.head": 8, "train.negatives.tail": 8}
    metrics = train_run(fast_config("nations", **over), tmp_path / "run")
    assert metrics["test"]["mrr"] > 0.6
