"""Row graphs from side information: naive oracles on tiny synthetic files and on samples of the
shared data (skipped without it)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from embedlab.datasets import registry
from embedlab.datasets.ratings import RatingDataset, RatingSplit, load_ratings
from embedlab.embeddings.graph import RowGraph
from embedlab.errors import UserError
from embedlab.recsys.graphs import GRAPH_SOURCES, build_graph, cliques, item_labels


def shared(name: str) -> Path:
    """``$EMBEDLAB_DATA_DIR/name`` holding the registry's files, else skip the test."""
    env = os.environ.get("EMBEDLAB_DATA_DIR")
    folder = Path(env) / name if env else None
    if folder is None or not all((folder / f).is_file() for f in registry.REGISTRY[name].files):
        pytest.skip(f"shared dataset {name} not available (set EMBEDLAB_DATA_DIR)")
    return folder


def edges(graph: RowGraph) -> set[tuple[int, int]]:
    """Directed edges of ``graph``, after checking it is simple and symmetric."""
    rows = torch.repeat_interleave(torch.arange(graph.num_rows), graph.degree)
    pairs = set(zip(rows.tolist(), graph.indices.tolist(), strict=True))
    assert len(pairs) == graph.indices.numel()  # no duplicates
    assert all(i != j and (j, i) in pairs for i, j in pairs)  # no self loops, symmetric
    return pairs


def check_simple(graph: RowGraph) -> None:
    """Vectorized: no self loops, no duplicates, symmetric (for the large real graphs)."""
    n = graph.num_rows
    keys = graph.edge_keys()
    rows, cols = keys // n, keys % n
    assert bool((rows != cols).all()) and keys.unique().numel() == keys.numel()
    assert torch.equal(torch.sort(cols * n + rows).values, torch.sort(keys).values)


def naive(ids: list[str], groups: dict[str, set[object]]) -> set[tuple[int, int]]:
    """Edge ``(a, b)`` iff rows a != b share a group (per-pair loop)."""
    return {
        (a, b)
        for (a, ia), (b, ib) in itertools.product(enumerate(ids), repeat=2)
        if a != b and groups.get(ia, set()) & groups.get(ib, set())
    }


def dataset(name: str, folder: Path, users: list[str], items: list[str]) -> RatingDataset:
    empty = torch.zeros(0, dtype=torch.long)
    split = RatingSplit(users=empty, items=empty, ratings=torch.zeros(0))
    return RatingDataset(
        name=name,
        num_users=len(users),
        num_items=len(items),
        splits={"train": split, "test": split},
        user_ids=users,
        item_ids=items,
        rating_scale=(1.0, 5.0),
        source_dir=folder,
        protocol="test",
    )


# --- synthetic --------------------------------------------------------------------------------------


def test_cliques_against_a_pair_loop() -> None:
    rng = np.random.default_rng(0)
    rows, groups = rng.integers(0, 30, 70), rng.integers(0, 9, 70)
    member: dict[str, set[object]] = {}
    for r, g in zip(rows.tolist(), groups.tolist(), strict=True):
        member.setdefault(str(r), set()).add(g)
    ids = [str(r) for r in range(32)]  # rows 30, 31 are in no group
    assert edges(cliques(32, rows, groups)) == naive(ids, member)


def test_ml1m_age_synthetic(tmp_path: Path) -> None:
    ages = {"1": 1, "2": 25, "3": 25, "4": 56, "5": 1, "6": 25}
    (tmp_path / "users.dat").write_text("".join(f"{u}::F::{a}::0::0\n" for u, a in ages.items()))
    users = ["2", "3", "4", "5", "6", "7"]  # 7 is not in users.dat: isolated
    graph = build_graph(dataset("ml-1m", tmp_path, users, []), table="user", source="age")
    assert edges(graph) == naive(users, {u: {a} for u, a in ages.items()})
    assert graph.degree.tolist() == [2, 2, 0, 0, 2, 0]


def test_ml100k_age_buckets(tmp_path: Path) -> None:
    ages = [10, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 73]
    buckets = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]  # <18, 18-24, ..., 50-55, 56+
    users = [str(u) for u in range(1, len(ages) + 1)]
    (tmp_path / "u.user").write_text(
        "".join(f"{u}|{a}|M|other|0\n" for u, a in zip(users, ages, strict=True))
    )
    graph = build_graph(dataset("ml-100k", tmp_path, users, []), table="user", source="age")
    assert edges(graph) == naive(users, {u: {b} for u, b in zip(users, buckets, strict=True)})


def test_ml1m_genre_and_labels_synthetic(tmp_path: Path) -> None:
    genres = {"1": "Comedy|Drama", "2": "Drama", "3": "Action", "5": "War|Comedy"}
    (tmp_path / "movies.dat").write_text(
        "".join(f"{m}::T\xe9 ({m})::{g}\n" for m, g in genres.items()), encoding="latin-1"
    )
    items = ["1", "2", "3", "4", "5"]
    ds = dataset("ml-1m", tmp_path, [], items)
    graph = build_graph(ds, table="item", source="genre")
    assert edges(graph) == naive(items, {m: set(g.split("|")) for m, g in genres.items()})
    labels, names = item_labels(ds)
    assert names == ["Action", "Comedy", "Drama", "War"]
    assert [names[k] if k >= 0 else None for k in labels.tolist()] == [
        "Comedy",
        "Drama",
        "Action",
        None,
        "War",
    ]


def test_ml1m_kg_synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kg = tmp_path / "ml-1m-kg"
    kg.mkdir()
    (kg / "item_index2entity_id.txt").write_text("10\t0\n20\t1\n30\t2\n40\t3\n")
    triples = [
        (0, "film.film.star", 100),
        (1, "film.film.star", 100),  # 10 -- 20 share a star
        (2, "film.film.director", 101),
        (3, "film.film.writer", 101),  # 30 -- 40: a director of one wrote the other
        (0, "film.film.language", 102),
        (2, "film.film.language", 102),  # a shared language does not count
        (9, "film.film.star", 100),  # an unlinked film
    ]
    (kg / "kg.txt").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in triples))
    monkeypatch.setenv("EMBEDLAB_DATA_DIR", str(tmp_path))
    items = ["10", "20", "30", "40", "50"]
    graph = build_graph(dataset("ml-1m", tmp_path, [], items), table="item", source="kg")
    assert edges(graph) == {(0, 1), (1, 0), (2, 3), (3, 2)}


def test_douban_social_synthetic(tmp_path: Path) -> None:
    (tmp_path / "user_graph_edges.tsv").write_text("0\t1\n1\t2\n2\t5\n")
    users = ["0", "1", "2", "3"]  # user 5 filtered out: its edge is dropped
    graph = build_graph(dataset("douban", tmp_path, users, []), table="user", source="social")
    assert edges(graph) == {(0, 1), (1, 0), (1, 2), (2, 1)}


def test_errors_list_the_valid_choices(tmp_path: Path) -> None:
    ds = dataset("ml-1m", tmp_path, ["1"], ["1"])
    with pytest.raises(UserError, match="valid: kg, genre"):
        build_graph(ds, table="item", source="age")
    with pytest.raises(UserError, match="no item graph for dataset 'douban'.*ml-1m users"):
        build_graph(dataset("douban", tmp_path, [], []), table="item", source="social")
    with pytest.raises(UserError, match="has no item labels"):
        item_labels(dataset("douban", tmp_path, [], []))
    assert GRAPH_SOURCES[("ml-1m", "item")][0] == "kg"


# --- shared data ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ml1m() -> RatingDataset:
    shared("ml-1m")
    return load_ratings("ml-1m")


def test_ml1m_age_against_users_dat(ml1m: RatingDataset) -> None:
    graph = build_graph(ml1m, table="user", source="age")
    lines = (ml1m.source_dir / "users.dat").read_text(encoding="latin-1").splitlines()
    age = {p[0]: p[2] for p in (line.split("::") for line in lines)}
    groups = [age[u] for u in ml1m.user_ids]
    sizes = {g: groups.count(g) for g in set(groups)}
    assert graph.degree.tolist() == [sizes[g] - 1 for g in groups]  # a clique per group
    sample = ml1m.user_ids[::10]  # 150 users: every pair checked
    rows = {u: k for k, u in enumerate(ml1m.user_ids)}
    keys = set(graph.edge_keys().tolist())
    for a, b in itertools.combinations(sample, 2):
        linked = rows[a] * graph.num_rows + rows[b] in keys
        assert linked == (age[a] == age[b]), (a, b)
    check_simple(graph)


def test_ml1m_kg_against_set_intersection(ml1m: RatingDataset) -> None:
    folder = shared("ml-1m-kg")
    graph = build_graph(ml1m, table="item", source="kg")
    entity = dict(
        line.split("\t")[::-1]
        for line in (folder / "item_index2entity_id.txt").read_text().splitlines()
    )  # entity -> MovieID
    tails: dict[str, set[str]] = {}
    for line in (folder / "kg.txt").read_text().splitlines():
        h, r, t = line.split("\t")
        if h in entity and r in ("film.film.star", "film.film.director", "film.film.writer"):
            tails.setdefault(entity[h], set()).add(t)
    sample = [m for m in ml1m.item_ids if m in tails][:60] + ml1m.item_ids[-20:]
    rows = {m: k for k, m in enumerate(ml1m.item_ids)}
    keys = set(graph.edge_keys().tolist())
    linked = 0
    for a, b in itertools.combinations(sample, 2):
        expected = bool(tails.get(a, set()) & tails.get(b, set()))
        assert (rows[a] * graph.num_rows + rows[b] in keys) == expected, (a, b)
        linked += expected
    assert linked > 0
    assert all(graph.degree[rows[m]] == 0 for m in ml1m.item_ids if m not in tails)
    check_simple(graph)


def test_ml100k_genre_and_labels() -> None:
    shared("ml-100k")
    ds = load_ratings("ml-100k")
    graph = build_graph(ds, table="item", source="genre")
    names = [line.split("|")[0] for line in (ds.source_dir / "u.genre").read_text().split()]
    genres = {}
    for line in (ds.source_dir / "u.item").read_text(encoding="latin-1").splitlines():
        p = line.split("|")
        genres[p[0]] = {n for n, f in zip(names, p[5:], strict=True) if f == "1"} - {"unknown"}
    sample = ds.item_ids[::12]
    check_simple(graph)
    rows = {m: k for k, m in enumerate(ds.item_ids)}
    keys = set(graph.edge_keys().tolist())
    for a, b in itertools.combinations(sample, 2):
        assert (rows[a] * graph.num_rows + rows[b] in keys) == bool(genres[a] & genres[b])
    labels, label_names = item_labels(ds)
    assert label_names[labels[rows["1"]]] == "Animation"  # Toy Story
    assert label_names[labels[rows["2"]]] == "Action"  # GoldenEye: Action|Adventure|Thriller
    assert int((labels == -1).sum()) == sum(not g for g in genres.values())


def test_ml1m_labels(ml1m: RatingDataset) -> None:
    labels, names = item_labels(ml1m)
    assert len(names) == 18 and labels.shape == (ml1m.num_items,)
    assert names[labels[ml1m.item_ids.index("1")]] == "Animation"  # Animation|Children's|Comedy
    assert bool((labels >= 0).all())


def test_ml100k_age_groups_are_cliques() -> None:
    shared("ml-100k")
    ds = load_ratings("ml-100k")
    graph = build_graph(ds, table="user", source="age")
    lines = (ds.source_dir / "u.user").read_text().splitlines()
    age = {p[0]: int(p[1]) for p in (line.split("|") for line in lines)}
    bounds = [18, 25, 35, 45, 50, 56]
    groups = [sum(age[u] >= b for b in bounds) for u in ds.user_ids]
    assert graph.degree.tolist() == [groups.count(g) - 1 for g in groups]
    check_simple(graph)


def test_douban_social_matches_the_edge_file() -> None:
    folder = shared("douban")
    ds = load_ratings("douban")
    graph = build_graph(ds, table="user", source="social")
    pairs = {tuple(map(int, line.split("\t"))) for line in (folder / "user_graph_edges.tsv").open()}
    assert graph.num_edges == len(pairs) == 1_344
    assert edges(graph) == pairs | {(b, a) for a, b in pairs}
    sparse = load_ratings("douban", sparse_users=20)
    small = build_graph(sparse, table="user", source="social")
    kept = set(sparse.user_ids)
    assert small.num_edges == sum(str(a) in kept and str(b) in kept for a, b in pairs)
