"""Graphs over the user or item rows of a :class:`RatingDataset` (for SSE-Graph and Laplacian
regularization), built from each dataset's side information, as in the SSE paper (Wu et al.,
NeurIPS 2019):

- ``ml-1m`` users, ``age``: users in one ``users.dat`` age group form a clique.
- ``ml-1m`` items, ``kg``: movies sharing a tail entity through ``film.film.star``,
  ``film.film.director`` or ``film.film.writer`` in MKR's KG (``ml-1m-kg``); ``genre``: movies
  sharing at least one ``movies.dat`` genre.
- ``ml-100k`` items, ``genre`` (``u.item`` flags); users, ``age`` (``u.user`` ages in ML-1M's seven
  age groups).
- ``douban`` users, ``social``: the user-user graph of Monti et al.

Rows without side information (a movie not in the KG, a user missing from ``users.dat``) are
isolated.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from embedlab.datasets.lines import split_lines
from embedlab.datasets.rating_files import MONTI_MAT, read_monti_mat
from embedlab.datasets.ratings import RatingDataset
from embedlab.datasets.resolve import resolve_dataset_dir
from embedlab.embeddings.graph import RowGraph
from embedlab.errors import DatasetError, UserError

KG_RELATIONS = ("film.film.star", "film.film.director", "film.film.writer")
AGE_GROUPS = (1, 18, 25, 35, 45, 50, 56)  # ML-1M's codes: <18, 18-24, 25-34, ..., 50-55, 56+
MAX_PAIRS = 50_000_000

_Labelled = tuple[np.ndarray, np.ndarray, list[str]]  # (K,) rows, (K,) groups, group names

GRAPH_SOURCES: dict[tuple[str, str], tuple[str, ...]] = {
    ("ml-1m", "user"): ("age",),
    ("ml-1m", "item"): ("kg", "genre"),
    ("ml-100k", "user"): ("age",),
    ("ml-100k", "item"): ("genre",),
    ("douban", "user"): ("social",),
}
"""``(dataset name, table)`` -> the graph sources for that table, the default first."""


def build_graph(
    dataset: RatingDataset, *, table: Literal["user", "item"], source: str | None = None
) -> RowGraph:
    """The graph ``source`` (``None``: the first of :data:`GRAPH_SOURCES` for this dataset and
    table) over the rows of ``dataset``'s ``table``.

    Returns:
        a :class:`RowGraph` with ``num_rows == dataset.num_users`` (or ``num_items``): symmetric,
        no self loops; rows without side information are isolated.

    Raises:
        UserError: no graph for this dataset and table, or an unknown ``source`` (valid ones
            listed).
        DatasetError: a side-information file is missing or malformed.
    """
    valid = GRAPH_SOURCES.get((dataset.name, table))
    if valid is None:
        known = ", ".join(f"{n} {t}s" for n, t in GRAPH_SOURCES)
        raise UserError(f"no {table} graph for dataset {dataset.name!r}; graphs exist for: {known}")
    source = source or valid[0]
    if source not in valid:
        raise UserError(
            f"unknown {table} graph source {source!r} for {dataset.name!r}; valid: "
            f"{', '.join(valid)}"
        )
    return _BUILDERS[(dataset.name, table, source)](dataset)


def item_labels(dataset: RatingDataset) -> tuple[torch.Tensor, list[str]]:
    """Each item's first listed genre (``movies.dat`` for ``ml-1m``, ``u.item`` for ``ml-100k``).

    Returns:
        ``(num_items,)`` int64 label (index into the names; -1 where unknown) and the label names.

    Raises:
        UserError: the dataset has no item labels (``douban``, custom datasets).
    """
    if dataset.name == "ml-1m":
        rows, genres, names = _ml1m_genres(dataset)
    elif dataset.name == "ml-100k":
        rows, genres, names = _ml100k_genres(dataset)
    else:
        raise UserError(f"dataset {dataset.name!r} has no item labels (ml-1m and ml-100k have)")
    labels = torch.full((dataset.num_items,), -1, dtype=torch.long)
    first = np.unique(rows, return_index=True)[1]  # pairs are listed in genre order per item
    labels[torch.from_numpy(rows[first])] = torch.from_numpy(genres[first])
    return labels, names


def cliques(num_rows: int, rows: np.ndarray, groups: np.ndarray) -> RowGraph:
    """Rows that share a group are connected: the union of one clique per group.

    Args:
        rows, groups: ``(K,)`` int pairs "row ``rows[k]`` belongs to group ``groups[k]``"; a row
            may belong to several groups; duplicate pairs are fine.

    Raises:
        UserError: the cliques would hold more than ``MAX_PAIRS`` node pairs.
    """
    pairs = np.unique(np.stack([groups, rows]).astype(np.int64), axis=1)  # sorted by group
    _, starts, sizes = np.unique(pairs[0], return_index=True, return_counts=True)
    if int((sizes * (sizes - 1) // 2).sum()) > MAX_PAIRS:
        raise UserError(f"the group cliques would hold more than {MAX_PAIRS:,} edges")
    members = torch.from_numpy(pairs[1])
    src, dst = [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, dtype=torch.long)]
    for start, size in zip(starts.tolist(), sizes.tolist(), strict=True):  # one loop per group
        if size > 1:
            upper = torch.triu_indices(size, size, offset=1)  # (2, size * (size - 1) / 2)
            src.append(members[start + upper[0]])
            dst.append(members[start + upper[1]])
    return RowGraph.from_edges(num_rows=num_rows, src=torch.cat(src), dst=torch.cat(dst))


def _rows(ids: list[str] | np.ndarray, vocabulary: list[str]) -> np.ndarray:
    """Row of each raw id in ``vocabulary`` (-1 where absent), ``(len(ids),)`` int64."""
    index = {raw: row for row, raw in enumerate(vocabulary)}
    return np.asarray([index.get(str(i), -1) for i in ids], dtype=np.int64).reshape(-1)


def _fields(path: Path, sep: str, fields: int, encoding: str = "utf-8") -> list[list[str]]:
    """Split every non-blank line of a side file into exactly ``fields`` fields (file:line on
    error)."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found (needed for this graph)")
    return [parts for _, parts in split_lines(path, sep=sep, fields=fields, encoding=encoding)]


def _groups_graph(dataset: RatingDataset, ids: list[str], labels: list[int]) -> RowGraph:
    """Users ``ids`` with group ``labels``: one clique per group (``RowGraph.from_groups``)."""
    rows = _rows(ids, dataset.user_ids)
    per_row = torch.full((dataset.num_users,), -1, dtype=torch.long)
    known = rows >= 0
    per_row[torch.from_numpy(rows[known])] = torch.tensor(labels, dtype=torch.long)[known]
    return RowGraph.from_groups(per_row)


def _ml1m_age(dataset: RatingDataset) -> RowGraph:
    lines = _fields(dataset.source_dir / "users.dat", "::", 5, "latin-1")
    try:
        groups = [AGE_GROUPS.index(int(p[2])) for p in lines]
    except ValueError:
        raise DatasetError(f"{dataset.source_dir / 'users.dat'}: age not in {AGE_GROUPS}") from None
    return _groups_graph(dataset, [p[0] for p in lines], groups)


def _ml100k_age(dataset: RatingDataset) -> RowGraph:
    lines = _fields(dataset.source_dir / "u.user", "|", 5, "latin-1")
    ages = np.asarray([int(p[1]) for p in lines])
    groups = np.searchsorted(np.asarray(AGE_GROUPS), ages, side="right") - 1  # 17 -> 0, 18 -> 1
    return _groups_graph(dataset, [p[0] for p in lines], np.maximum(groups, 0).tolist())


def _ml1m_genres(dataset: RatingDataset) -> _Labelled:
    """``(row, genre)`` pairs in each movie's listed order, and the sorted genre names."""
    lines = _fields(dataset.source_dir / "movies.dat", "::", 3, "latin-1")
    listed = [p[2].split("|") for p in lines]
    names = sorted({g for genres in listed for g in genres})
    ids = [p[0] for p, genres in zip(lines, listed, strict=True) for _ in genres]
    genres = [names.index(g) for gs in listed for g in gs]
    return _known(_rows(ids, dataset.item_ids), np.asarray(genres, dtype=np.int64), names)


def _ml100k_genres(dataset: RatingDataset) -> _Labelled:
    """``(row, genre)`` pairs from ``u.item``'s 19 flags; the genre ``unknown`` is left out."""
    names = [p[0] for p in _fields(dataset.source_dir / "u.genre", "|", 2, "latin-1")]
    lines = _fields(dataset.source_dir / "u.item", "|", 5 + len(names), "latin-1")
    flags = np.asarray([[f == "1" for f in p[5:]] for p in lines])  # (movies, genres)
    keep = [k for k, n in enumerate(names) if n != "unknown"]
    movie, genre = np.nonzero(flags[:, keep])  # row-major: each movie's genres in listed order
    rows = _rows([lines[m][0] for m in movie], dataset.item_ids)
    return _known(rows, genre.astype(np.int64), [names[k] for k in keep])


def _known(rows: np.ndarray, groups: np.ndarray, names: list[str]) -> _Labelled:
    """Drop the pairs of items that are not rows of the dataset."""
    keep = rows >= 0
    return rows[keep], groups[keep], names


def _genre_graph(
    labelled: Callable[[RatingDataset], _Labelled],
) -> Callable[[RatingDataset], RowGraph]:
    """Items sharing at least one genre are connected."""

    def build(dataset: RatingDataset) -> RowGraph:
        rows, genres, _ = labelled(dataset)
        return cliques(dataset.num_items, rows, genres)

    return build


def _ml1m_kg(dataset: RatingDataset) -> RowGraph:
    folder = resolve_dataset_dir("ml-1m-kg")
    mapping = _fields(folder / "item_index2entity_id.txt", "\t", 2)
    entity_row = dict(
        zip(
            (int(p[1]) for p in mapping),
            _rows([p[0] for p in mapping], dataset.item_ids),
            strict=True,
        )
    )
    triples = np.asarray(_fields(folder / "kg.txt", "\t", 3))  # (T, 3) str
    used = triples[np.isin(triples[:, 1], KG_RELATIONS)]
    rows = np.asarray([entity_row.get(int(h), -1) for h in used[:, 0]], dtype=np.int64)
    tails = used[:, 2].astype(np.int64)
    keep = rows >= 0
    return cliques(dataset.num_items, rows[keep], tails[keep])


def _douban_social(dataset: RatingDataset) -> RowGraph:
    path = dataset.source_dir / "user_graph_edges.tsv"
    if path.is_file():
        edges = np.asarray(_fields(path, "\t", 2), dtype=str).reshape(-1, 2)
        src, dst = _rows(edges[:, 0], dataset.user_ids), _rows(edges[:, 1], dataset.user_ids)
    elif (dataset.source_dir / MONTI_MAT).is_file():
        u, v = np.nonzero(read_monti_mat(dataset.source_dir / MONTI_MAT, "W_users"))
        src, dst = _rows(u, dataset.user_ids), _rows(v, dataset.user_ids)
    else:
        raise DatasetError(f"{dataset.source_dir}: user_graph_edges.tsv or {MONTI_MAT} not found")
    keep = (src >= 0) & (dst >= 0)  # users filtered out (sparse_users) drop their edges
    return RowGraph.from_edges(
        num_rows=dataset.num_users, src=torch.from_numpy(src[keep]), dst=torch.from_numpy(dst[keep])
    )


_BUILDERS: dict[tuple[str, str, str], Callable[[RatingDataset], RowGraph]] = {
    ("ml-1m", "user", "age"): _ml1m_age,
    ("ml-1m", "item", "kg"): _ml1m_kg,
    ("ml-1m", "item", "genre"): _genre_graph(_ml1m_genres),
    ("ml-100k", "user", "age"): _ml100k_age,
    ("ml-100k", "item", "genre"): _genre_graph(_ml100k_genres),
    ("douban", "user", "social"): _douban_social,
}
