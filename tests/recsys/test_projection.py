"""3-D PCA projections of MF tables (paper 000, Figure 1) and ``embedlab plot embeddings``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from mpl_toolkits.mplot3d import Axes3D
from safetensors.numpy import load_file as load_numpy

import embedlab.recsys.projection as projection
from embedlab.cli.main import main
from embedlab.errors import UserError
from embedlab.recsys.config import MfConfig
from embedlab.recsys.model import MatrixFactorization
from embedlab.recsys.projection import (
    load_table,
    merge_label_names,
    pca_3d,
    regularizer_title,
)
from embedlab.training.checkpoint import save_checkpoint

USERS, ITEMS, DIM = 30, 60, 8


def test_pca_3d_matches_numpy_svd() -> None:
    gen = np.random.default_rng(0)
    x = gen.normal(size=(200, 10)) * np.linspace(3.0, 0.5, 10) + 5.0  # (N, d), off-centre
    points, explained = pca_3d(torch.from_numpy(x).float())
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:3].T  # (N, 3)
    assert points.shape == (200, 3) and explained.shape == (3,)
    for k in range(3):  # each component up to its sign
        got = points[:, k].double().numpy()
        sign = np.sign(got @ expected[:, k])
        np.testing.assert_allclose(got, sign * expected[:, k], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(explained.numpy(), s[:3] ** 2 / (s**2).sum(), rtol=1e-5)
    assert float(explained.sum()) <= 1.0
    assert bool((explained[:-1] >= explained[1:]).all())


def test_pca_3d_small_and_degenerate_inputs() -> None:
    points, explained = pca_3d(torch.randn(5, 2))  # d < 3: third component is zero
    assert points.shape == (5, 3) and float(points[:, 2].abs().max()) == 0.0
    assert float(explained[2]) == 0.0 and abs(float(explained.sum()) - 1.0) < 1e-5
    points, explained = pca_3d(torch.ones(4, 6))  # no variance at all
    assert float(points.abs().max()) == 0.0 and float(explained.sum()) == 0.0
    with pytest.raises(UserError):
        pca_3d(torch.zeros(0, 4))


def test_regularizer_title() -> None:
    def config(**item: object) -> MfConfig:
        return MfConfig.model_validate({"item_embedding": item})

    assert regularizer_title(config(), "item") == "no SSE"
    assert (
        regularizer_title(config(sse={"kind": "graph", "p": 0.01, "rho": 10}), "item")
        == "SSE-Graph (p=0.01, ρ=10)"
    )
    assert regularizer_title(config(sse={"kind": "se", "p": 0.1}), "item") == "SSE-SE (p=0.1)"
    assert regularizer_title(config(dropout=0.2), "item") == "no SSE + dropout 0.2"
    assert regularizer_title(config(sse={"kind": "se"}), "user") == "no SSE"


def test_merge_label_names() -> None:
    a = (torch.tensor([0, 1, -1]), ["x", "y"])
    b = (torch.tensor([1, 0]), ["y", "z"])
    merged, names = merge_label_names([a, None, b])
    assert names == ["x", "y", "z"]
    assert merged[0] is not None and merged[0].tolist() == [0, 1, -1]
    assert merged[1] is None
    assert merged[2] is not None and merged[2].tolist() == [2, 1]


def _write_dataset(folder: Path) -> Path:
    """A custom ratings dataset whose train split covers every user and item."""
    gen = np.random.default_rng(1)
    folder.mkdir(parents=True)
    lines = [f"u{u}\ti{i}\t{gen.integers(1, 6)}" for u in range(USERS) for i in (u, u + USERS)]
    lines += [f"u{gen.integers(USERS)}\ti{gen.integers(ITEMS)}\t{gen.integers(1, 6)}"]
    (folder / "train.tsv").write_text("\n".join(lines[:-1]) + "\n")
    (folder / "test.tsv").write_text(lines[-1] + "\n")
    return folder


def _write_run(run_dir: Path, dataset: Path, *, seed: int = 0, **item: object) -> Path:
    """A run directory as ``train_mf`` leaves it: config.yaml and checkpoints/last."""
    config = MfConfig.model_validate(
        {"dataset": str(dataset), "seed": seed, "model": {"dim": DIM}, "item_embedding": item}
    )
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    torch.manual_seed(seed)
    model = MatrixFactorization(num_users=USERS, num_items=ITEMS, config=config)
    save_checkpoint(run_dir / "checkpoints" / "last", model=model)
    return run_dir


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    dataset = _write_dataset(tmp_path / "ratings")
    return [
        _write_run(tmp_path / "none", dataset),
        _write_run(tmp_path / "se", dataset, seed=1, sse={"kind": "se", "p": 0.05}),
    ]


def test_load_table(runs: list[Path]) -> None:
    weights, config = load_table(runs[0], "item")
    assert weights.shape == (ITEMS, DIM) and config.model.dim == DIM
    assert load_table(runs[0], "user")[0].shape == (USERS, DIM)
    (runs[0] / "checkpoints" / "last.safetensors").unlink()
    with pytest.raises(UserError, match="no checkpoint"):
        load_table(runs[0], "item")


def _numpy_pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3)`` projections and ``(3,)`` variance ratios by numpy's SVD of the centred rows, each
    component signed as documented (its largest-magnitude loading positive, sklearn's svd_flip)."""
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:3] * np.sign(vt[:3][np.arange(3), np.abs(vt[:3]).argmax(axis=1)])[:, None]
    return centred @ components.T, s[:3] ** 2 / (s**2).sum()


def _table(run_dir: Path, rows: int) -> np.ndarray:
    """The ``(rows, DIM)`` table of the run's checkpoint, read with safetensors' numpy API."""
    tensors = load_numpy(str(run_dir / "checkpoints" / "last.safetensors"))
    [table] = [v for v in tensors.values() if v.shape == (rows, DIM)]
    return table.astype(np.float64)


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Axes3D, np.ndarray]]:
    """Every 3-D scatter drawn: its axes and its ``(n, 3)`` points, as passed to matplotlib."""
    calls: list[tuple[Axes3D, np.ndarray]] = []
    real = Axes3D.scatter

    def spy(self: Axes3D, xs, ys, zs=0, *args, **kwargs):
        calls.append(
            (self, np.column_stack([np.asarray(v, dtype=np.float64) for v in (xs, ys, zs)]))
        )
        return real(self, xs, ys, zs, *args, **kwargs)

    monkeypatch.setattr(Axes3D, "scatter", spy)
    return calls


def _assert_axis_labels(ax: Axes3D, table: np.ndarray) -> None:
    """Each axis is labelled with the share of the variance its component explains."""
    _, ratios = _numpy_pca(table)
    labels = [ax.get_xlabel(), ax.get_ylabel(), ax.get_zlabel()]
    assert labels == [f"PC{k + 1} ({100 * ratios[k]:.1f}%)" for k in range(3)]


def _assert_panel(ax: Axes3D, points: np.ndarray, table: np.ndarray) -> None:
    """The drawn points are the table's numpy PCA, row for row; the axis labels its ratios."""
    np.testing.assert_allclose(points, _numpy_pca(table)[0], rtol=1e-5, atol=1e-6)
    _assert_axis_labels(ax, table)


def test_plot_embeddings_with_labels(
    runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drawn: list
) -> None:
    names = [f"genre{k}" for k in range(10)]

    def fake_labels(dataset: object) -> tuple[torch.Tensor, list[str]]:
        labels = torch.arange(ITEMS) % 11 - 1  # -1 (unknown) and ten genres
        return labels, names

    monkeypatch.setattr(projection, "item_labels", fake_labels)
    out = tmp_path / "fig" / "projections.png"
    argv = ["plot", "embeddings", *map(str, runs), "--out", str(out), "--title-from-config"]
    assert main([*argv, "--color-by", "genre", "--max-points", "40"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert len(drawn) == 2
    picked = []
    for (ax, points), run in zip(drawn, runs, strict=True):
        want, _ = _numpy_pca(_table(run, ITEMS))  # (60, 3)
        _assert_axis_labels(ax, _table(run, ITEMS))
        assert points.shape == (40, 3)  # a sample of 40 of the 60 projected rows
        nearest = np.abs(points[:, None, :] - want[None, :, :]).max(axis=2).argmin(axis=1)
        np.testing.assert_allclose(points, want[nearest], rtol=1e-5, atol=1e-6)
        assert len(set(nearest.tolist())) == 40
        picked.append(nearest.tolist())
    assert sorted(picked[0]) == sorted(picked[1])  # the same rows in panels of equal length
    assert [ax.get_title() for ax, _ in drawn] == ["no SSE", "SSE-SE (p=0.05)"]


def test_plot_embeddings_without_labels(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], drawn: list
) -> None:
    out = tmp_path / "plain.png"
    assert main(["plot", "embeddings", *map(str, runs), "--out", str(out)]) == 0  # auto
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "not coloured" in capsys.readouterr().err
    assert len(drawn) == 2
    for (ax, points), run in zip(drawn, runs, strict=True):
        _assert_panel(ax, points, _table(run, ITEMS))
    out_user = tmp_path / "users.png"
    argv = ["plot", "embeddings", str(runs[0]), "--table", "user", "--out", str(out_user)]
    assert main(argv) == 0
    assert out_user.read_bytes()[:4] == b"\x89PNG"
    assert len(drawn) == 3
    _assert_panel(*drawn[2], _table(runs[0], USERS))


def test_plot_embeddings_user_errors(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "x.png")
    assert main(["plot", "embeddings", str(tmp_path / "ratings"), "--out", out]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["plot", "embeddings", str(tmp_path / "missing"), "--out", out]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["plot", "embeddings", str(runs[0]), "--color-by", "genre", "--out", out]) == 2
    assert "no item labels" in capsys.readouterr().err
    assert not Path(out).exists()


DATA_DIR = os.environ.get("EMBEDLAB_DATA_DIR")


@pytest.mark.skipif(
    not (DATA_DIR and (Path(DATA_DIR) / "ml-1m" / "movies.dat").is_file()),
    reason="needs $EMBEDLAB_DATA_DIR/ml-1m",
)
def test_ml1m_item_labels_cover_the_rows() -> None:
    config = MfConfig()
    config.dataset = "ml-1m"
    labels, names = projection.table_labels(config, "item")
    assert labels.dim() == 1 and len(names) == 18 and "Drama" in names
    assert float((labels >= 0).float().mean()) > 0.99
