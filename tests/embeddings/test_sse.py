"""SSE-SE / SSE-Graph: replacement statistics against the kernel, by exact tests (papers 000/001).

Tolerances: counts are compared with chi-square / binomial tests at significance 1e-4 (a correct
sampler fails about once in 10,000 runs per assertion); every test is seeded, so a pass is stable.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from embedlab.embeddings.config import EmbeddingConfig, SseConfig
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.lookup import EmbeddingTable
from embedlab.embeddings.sse import SseIndexTransform, build_sse

ALPHA = 1e-4
DRAWS = 200_000


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_graph(n: int, edges: int, seed: int) -> RowGraph:
    g = _gen(seed)
    src = torch.randint(0, n, (edges,), generator=g)
    dst = torch.randint(0, n, (edges,), generator=g)
    return RowGraph.from_edges(num_rows=n, src=src, dst=dst)


def _kernel_row(graph: RowGraph | None, n: int, j: int, p: float, rho: float) -> torch.Tensor:
    """Naive transition probabilities p(j, .) written from the docstring's formula."""
    nbrs = (
        set()
        if graph is None
        else set(graph.indices[graph.indptr[j] : graph.indptr[j + 1]].tolist())
    )
    w = torch.tensor(
        [0.0 if k == j else (rho if k in nbrs else 1.0) for k in range(n)], dtype=torch.float64
    )
    if math.isinf(rho):
        w = torch.tensor([1.0 if k in nbrs else 0.0 for k in range(n)], dtype=torch.float64)
    probs = torch.zeros(n, dtype=torch.float64)
    if w.sum() > 0:
        probs = p * w / w.sum()
        probs[j] = 1 - p
    else:
        probs[j] = 1.0
    return probs


def _assert_matches(counts: torch.Tensor, probs: torch.Tensor) -> None:
    support = probs > 0
    assert counts[~support].sum() == 0, "drew a row the kernel gives probability 0"
    expected = probs[support] * counts.sum()
    _, pvalue = stats.chisquare(counts[support].double().numpy(), expected.numpy())
    assert pvalue > ALPHA, f"chi-square p={pvalue:.2e}: {counts.tolist()} vs {expected.tolist()}"


def test_replacement_frequency_is_p() -> None:
    # N = 5: the authors' draw-from-all-rows rate p (1 - 1/N) = 0.08 would fail by ~20 SD
    sse = SseIndexTransform(num_rows=5, p=0.1)
    idx = torch.randint(0, 5, (DRAWS,), generator=_gen(1))
    out = sse(idx, generator=_gen(2))
    replaced = int((out != idx).sum())
    assert stats.binomtest(replaced, DRAWS, 0.1).pvalue > ALPHA


def test_se_replacements_are_uniform_over_other_rows() -> None:
    n, j = 40, 7
    sse = SseIndexTransform(num_rows=n, p=0.5)
    out = sse(torch.full((DRAWS,), j), generator=_gen(3))
    _assert_matches(torch.bincount(out, minlength=n), _kernel_row(None, n, j, 0.5, 1.0))


@pytest.mark.parametrize("rho", [0.5, 1.0, 10.0, math.inf])
def test_graph_kernel_matches_formula(rho: float) -> None:
    n = 30
    graph = _random_graph(n, 60, seed=4)
    sse = SseIndexTransform(num_rows=n, p=0.6, graph=graph, rho=rho)
    for j in (0, 5, int(graph.degree.argmax()), int(graph.degree.argmin())):
        out = sse(torch.full((DRAWS // 4,), j), generator=_gen(j))
        _assert_matches(torch.bincount(out, minlength=n), _kernel_row(graph, n, j, 0.6, rho))


def test_neighbour_share_on_a_batch_of_mixed_rows() -> None:
    """Share of replacements landing on a neighbour == sum over rows of the kernel's share."""
    n, rho = 200, 5.0
    graph = _random_graph(n, 800, seed=5)
    sse = SseIndexTransform(num_rows=n, p=1.0, graph=graph, rho=rho)
    idx = torch.randint(0, n, (DRAWS,), generator=_gen(6))
    out = sse(idx, generator=_gen(7))
    keys = set(graph.edge_keys().tolist())
    hits = sum((a * n + b) in keys for a, b in zip(idx.tolist(), out.tolist(), strict=True))
    deg = graph.degree[idx].double()
    share = rho * deg / (rho * deg + (n - 1 - deg))
    mean, var = share.sum().item(), (share * (1 - share)).sum().item()
    assert abs(hits - mean) < 5 * math.sqrt(var)


def test_rho_one_and_complete_graph_are_se() -> None:
    n, j = 12, 3
    complete = RowGraph.from_groups(torch.zeros(n, dtype=torch.long))
    assert complete.num_edges == n * (n - 1) // 2
    for graph, rho in ((complete, 7.0), (_random_graph(n, 20, seed=8), 1.0)):
        sse = SseIndexTransform(num_rows=n, p=0.3, graph=graph, rho=rho)
        out = sse(torch.full((DRAWS // 2,), j), generator=_gen(9))
        _assert_matches(torch.bincount(out, minlength=n), _kernel_row(None, n, j, 0.3, 1.0))


def test_non_neighbour_draw_is_exact() -> None:
    """The fixed-point draw returns the r-th row outside {j} and N(j), for every r (dense graph)."""
    n = 25
    graph = _random_graph(n, 200, seed=10)
    sse = SseIndexTransform(num_rows=n, p=1.0, graph=graph, rho=2.0)
    for j in range(n):
        nbrs = set(graph.indices[graph.indptr[j] : graph.indptr[j + 1]].tolist())
        outside = [k for k in range(n) if k != j and k not in nbrs]
        if not outside:
            continue
        r = torch.arange(len(outside))
        got = sse._rth_non_neighbour(torch.full_like(r, j), r)
        assert got.tolist() == outside


def test_rho_inf_never_replaces_isolated_rows() -> None:
    graph = RowGraph.from_edges(num_rows=5, src=torch.tensor([0]), dst=torch.tensor([1]))
    sse = SseIndexTransform(num_rows=5, p=1.0, graph=graph, rho=math.inf)
    out = sse(torch.tensor([0, 1, 2, 3, 4] * 100), generator=_gen(11))
    assert out.tolist() == [1, 0, 2, 3, 4] * 100


def test_identity_in_eval_mode_and_for_frozen_indices() -> None:
    sse = SseIndexTransform(num_rows=10, p=1.0)
    idx = torch.randint(0, 10, (4, 50), generator=_gen(12))
    frozen = torch.rand(4, 50, generator=_gen(13)) < 0.5
    out = sse(idx, frozen, generator=_gen(14))
    assert out.shape == idx.shape
    assert torch.equal(out[frozen], idx[frozen])
    assert bool((out[~frozen] != idx[~frozen]).all())
    sse.eval()
    assert torch.equal(sse(idx), idx)


def test_seeded_draws_repeat() -> None:
    sse = SseIndexTransform(num_rows=100, p=0.5, graph=_random_graph(100, 300, 15), rho=3.0)
    idx = torch.randint(0, 100, (1000,), generator=_gen(16))
    assert torch.equal(sse(idx, generator=_gen(17)), sse(idx, generator=_gen(17)))


def test_gradients_reach_the_replaced_rows() -> None:
    torch.manual_seed(18)
    config = EmbeddingConfig(sse=SseConfig(kind="se", p=1.0))
    table = EmbeddingTable(num_rows=20, dim=4, config=config)
    idx = torch.tensor([3, 3, 5])
    out = table(idx)
    out.sum().backward()
    grad_rows = set(torch.nonzero(table.weight.grad.abs().sum(1)).squeeze(1).tolist())
    assert 3 not in grad_rows and 5 not in grad_rows  # p = 1: the originals are never looked up
    assert 1 <= len(grad_rows) <= 3
    table.eval()
    assert torch.equal(table(idx), table.weight[idx])


def test_build_sse_validates() -> None:
    assert build_sse(num_rows=5, kind="none", p=0.1, rho=1.0, graph=None) is None
    with pytest.raises(ValueError, match="needs a graph"):
        build_sse(num_rows=5, kind="graph", p=0.1, rho=1.0, graph=None)
    with pytest.raises(ValueError, match="not in"):
        SseIndexTransform(num_rows=5, p=1.5)
    with pytest.raises(ValueError, match="rows"):
        SseIndexTransform(num_rows=5, p=0.1, graph=_random_graph(6, 3, 0))


def test_from_groups_connects_rows_of_one_group() -> None:
    labels = torch.tensor([0, 1, 0, -1, 1, 0])
    graph = RowGraph.from_groups(labels)
    keys = set(graph.edge_keys().tolist())
    for a in range(6):
        for b in range(6):
            same = a != b and labels[a] >= 0 and labels[a] == labels[b]
            assert ((a * 6 + b) in keys) == bool(same)


def test_laplacian_rows_sum_to_zero() -> None:
    graph = _random_graph(15, 30, 19)
    lap = graph.laplacian().to_dense()
    assert torch.allclose(lap.sum(1), torch.zeros(15))
    assert torch.equal(lap, lap.T)
    assert torch.equal(torch.diagonal(lap), graph.degree.float())


@pytest.mark.parametrize("p", [0.003, 0.2])
def test_selected_positions_are_iid_bernoulli(p: float) -> None:
    """Geometric-gap selection: each position is chosen with probability p (count per bin of
    positions ~ Binomial) and gaps are Geometric(p) (their mean is 1/p)."""
    from embedlab.embeddings.sse import _bernoulli_positions

    size, draws = 10_000, 60
    g = _gen(20)
    counts = torch.zeros(10, dtype=torch.float64)
    gaps = []
    for _ in range(draws):
        pos = _bernoulli_positions(size, p, torch.device("cpu"), g)
        assert bool((pos[1:] > pos[:-1]).all()) and (pos.numel() == 0 or int(pos[-1]) < size)
        counts += torch.bincount(pos // (size // 10), minlength=10).double()
        gaps.append(torch.diff(pos).double())
    _, pvalue = stats.chisquare(counts.numpy(), [float(counts.sum()) / 10] * 10)  # uniform
    assert pvalue > ALPHA
    assert stats.binomtest(int(counts.sum()), size * draws, p).pvalue > ALPHA
    gap = torch.cat(gaps)
    assert abs(gap.mean().item() - 1 / p) < 5 * math.sqrt((1 - p) / p**2 / gap.numel())


def test_empty_and_int32_indices() -> None:
    g = _gen(21)  # N^2 > 2^31: int32 keys row * N + col would overflow
    src, dst = torch.randint(50_000, 50_050, (2, 500), generator=g)
    graph = RowGraph.from_edges(num_rows=60_000, src=src, dst=dst)
    sse = SseIndexTransform(num_rows=60_000, p=0.5, graph=graph, rho=1e4)
    assert sse(torch.zeros(0, dtype=torch.long)).numel() == 0
    idx = torch.randint(50_000, 50_050, (5000,), generator=_gen(22), dtype=torch.int32)
    out = sse(idx, generator=_gen(23))
    assert out.dtype == torch.int32
    keys = set(graph.edge_keys().tolist())
    changed = out != idx
    for a, b in zip(idx[changed].tolist(), out[changed].tolist(), strict=True):
        assert 0 <= b < 60_000 and b != a
    # neighbours drawn exactly where the kernel says: compare with an int64 run of the same seed
    again = sse(idx.long(), generator=_gen(23))
    assert torch.equal(out.long(), again)
    hits = sum(
        (a * 60_000 + b) in keys
        for a, b in zip(idx[changed].tolist(), out[changed].tolist(), strict=True)
    )
    assert hits > 0.5 * int(changed.sum())  # share ≈ 0.77 with deg ≈ 20, ρ = 1e4
    with pytest.raises(ValueError, match="bool"):
        sse(idx.long(), torch.zeros_like(idx))
