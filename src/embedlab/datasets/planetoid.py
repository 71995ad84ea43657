"""The Planetoid node-classification split (Cora) as Kipf & Welling's GCN reads it.

Files ``ind.PREFIX.{x,y,tx,ty,allx,ally,graph,test.index}`` (Yang, Cohen & Salakhutdinov,
*Revisiting Semi-Supervised Learning with Graph Embeddings*, ICML 2016), read with the restricted
unpickler of :mod:`embedlab.datasets.pickles`. The assembly follows ``load_data`` of
``tkipf/gcn`` (Kipf & Welling, ICLR 2017): features and labels are ``allx`` / ``ally`` stacked
over ``tx`` / ``ty``, whose row ``i`` belongs to node ``test.index[i]``; the standard split is
train = the ``len(y)`` first nodes, valid = the next 500, test = the sorted test ids. The
normalized adjacency is Kipf & Welling's eq. 8 renormalization ``Â = D̃^-1/2 (A + I) D̃^-1/2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from embedlab.datasets.pickles import CsrState, restricted_load
from embedlab.datasets.registry import REGISTRY
from embedlab.datasets.resolve import resolve_dataset_dir
from embedlab.errors import DatasetError, UserError

PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
VALID_SIZE = 500  # Kipf & Welling's validation nodes: range(len(y), len(y) + 500)


@dataclass(frozen=True)
class PlanetoidGraph:
    """One Planetoid dataset, assembled as Kipf & Welling's ``load_data``.

    Attributes:
        name: the registry name or the directory read.
        features: ``(N, F)`` float32 bag-of-words rows (binary for Cora, not normalized).
        labels: ``(N,)`` int64 class ids in ``0..C-1``.
        adjacency: ``Â (N, N)``, a coalesced sparse COO float32 tensor
            (:func:`normalized_adjacency`).
        edges: ``(2, E)`` int64 undirected pairs ``u <= v`` (self loops included if listed).
        splits: ``train`` / ``valid`` / ``test`` node ids, each ``(n,)`` int64.
    """

    name: str
    features: torch.Tensor
    labels: torch.Tensor
    adjacency: torch.Tensor
    edges: torch.Tensor
    splits: Mapping[str, torch.Tensor]

    @property
    def num_nodes(self) -> int:
        """N, the nodes of the graph."""
        return int(self.labels.shape[0])

    @property
    def num_features(self) -> int:
        """F, the width of a feature row."""
        return int(self.features.shape[1])

    @property
    def num_classes(self) -> int:
        """C, one more than the largest label."""
        return int(self.labels.max()) + 1

    def class_counts(self) -> list[int]:
        """Nodes per class over the whole graph, ``[n_0, ..., n_{C-1}]``."""
        return [int(n) for n in torch.bincount(self.labels, minlength=self.num_classes)]


def normalized_adjacency(edges: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``Â = D̃^-1/2 (A + I) D̃^-1/2`` with ``D̃_ii = sum_j (A + I)_ij`` (Kipf & Welling, eq. 8).

    Args:
        edges: ``(2, E)`` int64 undirected pairs; ``A`` is their symmetric 0/1 matrix
            (duplicates collapse; a listed self loop gives ``A_ii = 1``, so ``(A + I)_ii = 2``).
        num_nodes: N.

    Returns:
        a coalesced sparse COO float32 tensor ``(N, N)``.
    """
    both = torch.cat([edges, edges.flip(0)], dim=1)  # (2, 2E): both directions
    ids = torch.unique(both[0] * num_nodes + both[1])  # A's nonzeros, deduplicated
    rows = torch.cat([ids // num_nodes, torch.arange(num_nodes, device=edges.device)])
    cols = torch.cat([ids % num_nodes, torch.arange(num_nodes, device=edges.device)])
    values = torch.ones(rows.numel(), dtype=torch.float32, device=edges.device)
    degree = torch.zeros(num_nodes, dtype=torch.float32, device=edges.device)
    degree.index_add_(0, rows, values)  # row sums of A + I, >= 1
    scale = degree.rsqrt()
    values = scale[rows] * values * scale[cols]
    indices = torch.stack([rows, cols])
    shape = (num_nodes, num_nodes)
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=True).coalesce()


def _prefix(folder: Path, name: str) -> str:
    if name in REGISTRY:
        return name
    found = sorted(p.name[len("ind.") : -len(".graph")] for p in folder.glob("ind.*.graph"))
    if len(found) != 1:
        raise UserError(
            f"{folder}: a Planetoid dataset directory holds one set of files "
            f"ind.PREFIX.{{{','.join(PARTS)}}}; found {len(found)} ind.*.graph files"
        )
    return found[0]


def _matrix(value: object, path: Path) -> np.ndarray:
    if isinstance(value, CsrState):
        return value.to_dense(path)
    if isinstance(value, np.ndarray) and value.ndim == 2:
        return value.astype(np.float32)
    raise DatasetError(f"{path}: expected a 2-D matrix, got {type(value).__name__}")


def _labels(value: object, path: Path) -> np.ndarray:
    """One-hot rows -> class ids; rows that are not one-hot are refused."""
    matrix = _matrix(value, path)
    if not np.all((matrix == 0) | (matrix == 1)) or not np.all(matrix.sum(1) == 1):
        raise DatasetError(f"{path}: label rows must be one-hot")
    return matrix.argmax(1).astype(np.int64)


def _test_index(path: Path, first: int, count: int) -> np.ndarray:
    try:
        ids = np.array([int(line) for line in path.read_text(encoding="ascii").split()])
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: expected one node id per line ({exc})") from None
    if ids.size != count or not np.array_equal(np.sort(ids), np.arange(first, first + count)):
        raise DatasetError(
            f"{path}: expected the {count} distinct ids {first}..{first + count - 1} "
            "(one per row of tx), as in Cora"
        )
    return ids


def _edges(graph: object, path: Path, num_nodes: int) -> torch.Tensor:
    if not isinstance(graph, dict) or sorted(graph) != list(range(num_nodes)):
        raise DatasetError(
            f"{path}: expected a dict {{node: [neighbours]}} over 0..{num_nodes - 1}"
        )
    pairs = [(u, v) for u, neighbours in graph.items() for v in neighbours]
    array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    if array.size and (array.min() < 0 or array.max() >= num_nodes):
        raise DatasetError(f"{path}: a neighbour id is outside 0..{num_nodes - 1}")
    ordered = np.unique(np.sort(array, axis=1), axis=0)  # undirected pairs u <= v
    return torch.from_numpy(ordered.T.copy())


def load_planetoid(name_or_dir: str, *, valid_size: int = VALID_SIZE) -> PlanetoidGraph:
    """Read a Planetoid dataset (``cora``, or a directory of ``ind.PREFIX.*`` files).

    Raises:
        UserError: unknown name, files not found (how to provide them), a directory without
            exactly one file set.
        DatasetError: a malformed or unsafe file (named), or shapes that do not fit together.
    """
    spec = REGISTRY.get(name_or_dir)
    if spec is not None and spec.kind != "graph":
        raise UserError(f"dataset {name_or_dir!r} is of kind {spec.kind!r}, not a graph")
    folder = resolve_dataset_dir(name_or_dir)
    prefix = _prefix(folder, name_or_dir)
    path = {part: folder / f"ind.{prefix}.{part}" for part in PARTS}
    x, tx, allx = (_matrix(restricted_load(path[p]), path[p]) for p in ("x", "tx", "allx"))
    y, ty, ally = (_labels(restricted_load(path[p]), path[p]) for p in ("y", "ty", "ally"))
    for features, labels, a, b in ((x, y, "x", "y"), (tx, ty, "tx", "ty"), (allx, ally, "allx", "ally")):  # fmt: skip
        if features.shape[0] != labels.shape[0] or features.shape[1] != allx.shape[1]:
            raise DatasetError(f"{path[a]} and {path[b]}: row or feature counts do not match")
    num_nodes = allx.shape[0] + tx.shape[0]
    if y.shape[0] + valid_size > allx.shape[0]:
        raise DatasetError(
            f"{path['allx']}: {allx.shape[0]} rows, fewer than the {y.shape[0]} train and "
            f"{valid_size} valid nodes (data.valid_size)"
        )
    test = _test_index(path["test.index"], allx.shape[0], tx.shape[0])
    features, labels = np.vstack([allx, tx]), np.concatenate([ally, ty])
    features[test], labels[test] = tx, ty  # tx row i is node test.index[i]
    edges = _edges(restricted_load(path["graph"]), path["graph"], num_nodes)
    train = torch.arange(y.shape[0])
    return PlanetoidGraph(
        name=name_or_dir,
        features=torch.from_numpy(features),
        labels=torch.from_numpy(labels),
        adjacency=normalized_adjacency(edges, num_nodes),
        edges=edges,
        splits={
            "train": train,
            "valid": torch.arange(y.shape[0], y.shape[0] + valid_size),
            "test": torch.from_numpy(np.sort(test)),
        },
    )
