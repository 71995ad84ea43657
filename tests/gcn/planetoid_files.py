"""Tiny Planetoid datasets written on the fly, in the files' own format: Python pickles of
``scipy.sparse.csr.csr_matrix`` feature matrices, one-hot ``numpy`` label arrays and a
``collections.defaultdict(list)`` adjacency dict, plus ``test.index`` as text.

The CSR matrices are pickled as the original files have them (``GLOBAL scipy.sparse.csr
csr_matrix``, ``NEWOBJ``, ``BUILD`` with the attribute dict) without scipy: a stand-in class
is registered under that module name while pickling.
"""

from __future__ import annotations

import collections
import pickle
import random
import sys
import types
from pathlib import Path
from unittest import mock

import numpy as np


class _CsrMatrix:
    """Pickled under the name ``scipy.sparse.csr.csr_matrix``."""


_CsrMatrix.__module__ = "scipy.sparse.csr"
_CsrMatrix.__name__ = _CsrMatrix.__qualname__ = "csr_matrix"


def csr(dense: np.ndarray) -> _CsrMatrix:
    """A CSR stand-in with the attributes scipy pickles (``_shape``, ``indptr``, ...)."""
    obj = _CsrMatrix()
    rows, cols = np.nonzero(dense)
    obj.__dict__.update(
        _shape=dense.shape,
        indptr=np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[0]))]).astype(
            np.int32
        ),
        indices=cols.astype(np.int32),
        data=dense[rows, cols].astype(np.float32),
        format="csr",
        maxprint=50,
    )
    return obj


def dump(value: object, path: Path) -> None:
    """Pickle ``value`` with protocol 3: the globals are those of the Python-2 originals
    (protocol 2), but bytes are ``BINBYTES`` (Python 3 writes protocol-2 bytes through
    ``_codecs.encode``, a global the reader rightly refuses)."""
    fake = types.ModuleType("scipy.sparse.csr")
    fake.__dict__["csr_matrix"] = _CsrMatrix
    with mock.patch.dict(sys.modules, {"scipy.sparse.csr": fake}):
        path.write_bytes(pickle.dumps(value, protocol=3))


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float64)[labels]


def write_planetoid(
    folder: Path,
    *,
    prefix: str = "tiny",
    classes: int = 3,
    per_class: int = 20,
    train: int = 12,
    test: int = 18,
    words: int = 30,
    seed: int = 0,
) -> Path:
    """A homophilous graph of ``classes * per_class`` nodes: each node links to about three
    of its class and, rarely, to another class; its words are drawn mostly from its class's
    block of ``words // classes`` words. Node ``i`` is of class ``i % classes``; the last
    ``test`` ids are the test nodes, listed in ``test.index`` in a shuffled order (row ``i`` of
    ``tx`` / ``ty`` belongs to node ``test.index[i]``, as in Cora)."""
    rng = random.Random(seed)
    n = classes * per_class
    labels = np.arange(n) % classes  # every class among the first (training) nodes
    block = words // classes
    features = np.zeros((n, words), dtype=np.float32)
    for node, label in enumerate(labels):
        for _ in range(5):
            own = rng.random() < 0.8
            word = label * block + rng.randrange(block) if own else rng.randrange(words)
            features[node, word] = 1.0
    graph: collections.defaultdict[int, list[int]] = collections.defaultdict(list)
    for node in range(n):
        graph[node]  # every node is a key, as in Cora
    for node in range(n):
        same = [v for v in range(n) if labels[v] == labels[node] and v != node]
        for v in rng.sample(same, 3) + ([rng.randrange(n)] if rng.random() < 0.1 else []):
            graph[node].append(v)
            graph[v].append(node)
    first_test = n - test
    order = list(range(first_test, n))
    rng.shuffle(order)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"ind.{prefix}"
    dump(csr(features[:train]), folder / f"{name}.x")
    dump(one_hot(labels[:train], classes), folder / f"{name}.y")
    dump(csr(features[:first_test]), folder / f"{name}.allx")
    dump(one_hot(labels[:first_test], classes), folder / f"{name}.ally")
    dump(csr(features[order]), folder / f"{name}.tx")
    dump(one_hot(labels[order], classes), folder / f"{name}.ty")
    dump(graph, folder / f"{name}.graph")
    (folder / f"{name}.test.index").write_text("".join(f"{i}\n" for i in order))
    return folder
