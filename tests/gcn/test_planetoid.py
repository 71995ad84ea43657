"""The Planetoid reader: Kipf's assembly on tiny files, the normalized adjacency against a dense
formula, the restricted unpickler, malformed files, and Cora's published statistics."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from embedlab.datasets.pickles import restricted_load
from embedlab.datasets.planetoid import load_planetoid, normalized_adjacency
from embedlab.datasets.registry import REGISTRY
from embedlab.errors import DatasetError, UserError
from tests.gcn.planetoid_files import dump, write_planetoid


def dense_normalized(edges: np.ndarray, n: int) -> np.ndarray:
    """``D^-1/2 (A + I) D^-1/2`` in numpy, ``A`` the symmetric 0/1 matrix of ``edges``."""
    a = np.zeros((n, n))
    a[edges[0], edges[1]] = 1.0
    a[edges[1], edges[0]] = 1.0
    a_tilde = a + np.eye(n)
    d = a_tilde.sum(1) ** -0.5
    return d[:, None] * a_tilde * d[None, :]


def test_normalized_adjacency_equals_the_dense_formula() -> None:
    g = torch.Generator().manual_seed(0)
    n = 23
    edges = torch.randint(0, n, (2, 60), generator=g)  # duplicates, both orders, self loops
    edges = torch.cat([edges, torch.tensor([[4, 4], [4, 4]])], dim=1)
    got = normalized_adjacency(edges, n)
    assert got.is_sparse and got.is_coalesced() and got.dtype == torch.float32
    want = dense_normalized(edges.numpy(), n)
    np.testing.assert_allclose(got.to_dense().numpy(), want, rtol=1e-6, atol=1e-7)
    isolated = sorted(set(range(n)) - set(edges.flatten().tolist()))
    for i in isolated:  # an isolated node keeps itself: Â_ii = 1
        assert got.to_dense()[i, i] == 1.0


def test_tiny_files_are_assembled_as_kipf(tmp_path: Path) -> None:
    folder = write_planetoid(tmp_path / "tiny")
    graph = load_planetoid(str(folder), valid_size=10)
    n = 60
    assert (graph.num_nodes, graph.num_features, graph.num_classes) == (n, 30, 3)
    assert graph.splits["train"].tolist() == list(range(12))
    assert graph.splits["valid"].tolist() == list(range(12, 22))
    assert graph.splits["test"].tolist() == list(range(42, 60))
    # labels: node i is of class i % 3 (tx / ty rows were written in test.index order)
    assert graph.labels.tolist() == [i % 3 for i in range(n)]
    # features: the test rows went back to their nodes (each node's words are mostly its class's)
    blocks = graph.features.view(n, 3, 10).sum(2).argmax(1)  # (N,) the majority block
    assert (blocks == graph.labels).float().mean() > 0.9
    order = [int(i) for i in (folder / "ind.tiny.test.index").read_text().split()]
    tx = restricted_load(folder / "ind.tiny.tx").to_dense(folder / "ind.tiny.tx")
    np.testing.assert_array_equal(graph.features[order].numpy(), tx)
    assert graph.edges.shape[0] == 2 and bool((graph.edges[0] <= graph.edges[1]).all())
    dense = dense_normalized(graph.edges.numpy(), n)
    np.testing.assert_allclose(graph.adjacency.to_dense().numpy(), dense, rtol=1e-6)


def test_restricted_unpickler_refuses_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Exploit(), protocol=2))
    assert b"system" in evil.read_bytes()
    with pytest.raises(DatasetError, match=r"evil\.pkl.*system is not allowed"):
        restricted_load(evil)
    assert not marker.exists()
    # inside a dataset: the error names the file, nothing runs
    folder = write_planetoid(tmp_path / "tiny")
    (folder / "ind.tiny.graph").write_bytes(evil.read_bytes())
    with pytest.raises(DatasetError, match=r"ind\.tiny\.graph"):
        load_planetoid(str(folder), valid_size=10)
    assert not marker.exists()


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.pkl"
    dump(np.array([1, "a"], dtype=object), path)
    with pytest.raises(DatasetError, match="objects.pkl"):
        restricted_load(path)


@pytest.mark.parametrize(
    ("part", "content", "message"),
    [
        ("ty", None, r"ind\.tiny\.ty: cannot read"),
        ("graph", b"not a pickle", r"ind\.tiny\.graph: not a safe Planetoid pickle"),
        ("ally", "labels", r"ind\.tiny\.ally: label rows must be one-hot"),
        ("test.index", "42\n42\n", r"ind\.tiny\.test\.index: expected the 18 distinct ids"),
        ("graph", "dict", r"ind\.tiny\.graph: expected a dict"),
        ("tx", "short", r"ind\.tiny\.tx and \S*ind\.tiny\.ty: row or feature counts"),
    ],
)
def test_malformed_files_name_the_file(
    part: str, content: object, message: str, tmp_path: Path
) -> None:
    folder = write_planetoid(tmp_path / "tiny")
    path = folder / f"ind.tiny.{part}"
    if content is None:
        path.unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "labels":
        dump(np.full((42, 3), 0.5), path)
    elif content == "dict":
        dump({0: [1]}, path)
    elif content == "short":
        dump(np.ones((3, 30)), path)
    else:
        path.write_text(str(content))
    with pytest.raises(DatasetError, match=message):
        load_planetoid(str(folder), valid_size=10)


def test_directory_without_one_file_set(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="found 0 ind.*graph files"):
        load_planetoid(str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="data.valid_size"):
        load_planetoid(str(write_planetoid(tmp_path / "tiny")), valid_size=500)


def test_cora_registry_entry_is_pinned() -> None:
    spec = REGISTRY["cora"]
    assert spec.kind == "graph" and len(spec.files) == 8
    for local, remote in spec.files.items():
        assert remote.url.endswith(f"/af6abf468a772cc055bec88c52e4d6f51b7c37e3/data/{local}")
        assert remote.url.startswith("https://raw.githubusercontent.com/kimiyoung/planetoid/")


def _cora_dir() -> Path | None:
    env = os.environ.get("EMBEDLAB_DATA_DIR")
    folder = Path(env) / "cora" if env else None
    if folder is None or not all((folder / f).is_file() for f in REGISTRY["cora"].files):
        return None
    return folder


@pytest.mark.skipif(_cora_dir() is None, reason="EMBEDLAB_DATA_DIR has no cora/")
def test_cora_matches_its_provenance() -> None:
    folder = _cora_dir()
    assert folder is not None
    text = (folder / "PROVENANCE.md").read_text()
    for local, remote in REGISTRY["cora"].files.items():
        assert f"| {local} |" in text and remote.sha256 in text, local
    graph = load_planetoid("cora")
    assert (graph.num_nodes, graph.num_features, graph.num_classes) == (2708, 1433, 7)
    assert graph.edges.shape == (2, 5278)
    assert graph.class_counts() == [351, 217, 418, 818, 426, 298, 180]
    sizes = {split: ids.numel() for split, ids in graph.splits.items()}
    assert sizes == {"train": 140, "valid": 500, "test": 1000}
    assert graph.splits["valid"].tolist() == list(range(140, 640))
    assert graph.splits["test"].tolist() == list(range(1708, 2708))
    assert graph.labels[:140].bincount().tolist() == [20] * 7  # 20 labelled nodes per class
    assert graph.adjacency._nnz() == 2 * 5278 + 2708  # both directions + the self loops of I
    assert graph.features.sum().item() == 49216  # binary words: nnz of allx + tx
