"""Per-query oracles for KGE metrics, written without the evaluation code under test.

Filtered ranking by brute force: one query at a time, scores from the model's public
``score_tails`` / ``score_heads``, the filter as a Python set of every known triple, the realistic
rank as ``1 + #higher + #ties / 2`` (the expected rank under random tie-breaking).

Ties: scores within float32 rounding of the true answer's (``TIE_TOL``) are ties. Identical rows
(a KD table maps several entities to the same codes) must tie, but one query scored alone can get
their scores a few ulps apart (a matmul rounds columns differently), so exact equality would make
the oracle depend on how the scores were batched.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from embedlab.kge.run import load_run

TIE_TOL = 1e-5  # relative to the row's largest |score|; float32 rounding is ~1e-7 of it


def _realistic_rank(scores: list[float], answer: int, excluded: set[int]) -> float:
    true = scores[answer]
    tol = TIE_TOL * max(abs(s) for s in scores)
    others = [s for e, s in enumerate(scores) if e not in excluded and e != answer]
    higher = sum(1 for s in others if s > true + tol)
    ties = sum(1 for s in others if abs(s - true) <= tol)
    return 1 + higher + ties / 2


def brute_force_ranks(run_dir: Path, split: str) -> tuple[list[float], list[float], list[int]]:
    """Filtered realistic ranks of the run's best model on ``split``: ``(tail ranks, head ranks,
    number of candidates left after filtering per query (tails then heads))``."""
    _, dataset, model = load_run(run_dir)
    known = {tuple(t) for s in ("train", "valid", "test") for t in dataset.splits[s].tolist()}
    n = dataset.num_entities
    tails, heads, candidates = [], [], []
    with torch.no_grad():
        for h, r, t in dataset.splits[split].tolist():
            scores = model.score_tails(torch.tensor([h]), torch.tensor([r]))[0].tolist()
            excluded = {e for e in range(n) if e != t and (h, r, e) in known}
            tails.append(_realistic_rank(scores, t, excluded))
            candidates.append(n - len(excluded))
        for h, r, t in dataset.splits[split].tolist():
            scores = model.score_heads(torch.tensor([r]), torch.tensor([t]))[0].tolist()
            excluded = {e for e in range(n) if e != h and (e, r, t) in known}
            heads.append(_realistic_rank(scores, h, excluded))
            candidates.append(n - len(excluded))
    return tails, heads, candidates


def metrics_of(ranks: list[float]) -> dict[str, float]:
    """MRR, MR and Hits@1/3/10 of a list of ranks, by their definitions."""
    out = {"mrr": sum(1 / x for x in ranks) / len(ranks), "mr": sum(ranks) / len(ranks)}
    for k in (1, 3, 10):
        out[f"hits@{k}"] = sum(x <= k for x in ranks) / len(ranks)
    return out


def assert_metrics_match_brute_force(run_dir: Path, saved: dict, split: str = "test") -> None:
    """``saved`` (``metrics[split]`` of the run) equals the brute-force filtered metrics, overall
    and per direction."""
    tails, heads, _ = brute_force_ranks(run_dir, split)
    for part, ranks in (("overall", tails + heads), ("tail", tails), ("head", heads)):
        got = saved if part == "overall" else saved[part]
        want = metrics_of(ranks)
        for key, value in want.items():
            assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12), (part, key)
    assert saved["num_queries"] == len(tails) + len(heads)


def random_ranking_mrr(candidates: list[int]) -> float:
    """Expected filtered MRR of a uniformly random ranking: with ``c`` candidates the true answer's
    rank is uniform on ``1..c``, so ``E[1/rank] = H_c / c``; averaged over the queries."""
    return sum(sum(1 / k for k in range(1, c + 1)) / c for c in candidates) / len(candidates)
