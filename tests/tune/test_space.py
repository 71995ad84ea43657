"""Search-space YAML: parsing, errors naming the key, grid enumeration."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedlab.errors import UserError
from embedlab.tune.space import grid, load_space


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_parse_and_grid(tmp_path: Path) -> None:
    space = load_space(
        _write(
            tmp_path,
            """
train.lr: {type: float, low: 0.1, high: 0.3, step: 0.1}
model.dim: {type: int, low: 8, high: 32, step: 8}
loss.name: {type: categorical, choices: [sce, sce_ls]}
""",
        )
    )
    g = grid(space)
    assert g["train.lr"] == pytest.approx([0.1, 0.2, 0.3])
    assert g["model.dim"] == [8, 16, 24, 32]
    assert g["loss.name"] == ["sce", "sce_ls"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train.lr: {type: float, low: 1, high: 0.1}", "train.lr"),
        ("train.lr: {type: float, low: 0, high: 1, log: true}", "log"),
        ("train.lr: {type: uniform, low: 0, high: 1}", "train.lr"),
        ("model.dim: {type: int, low: 8, high: 32, stepp: 8}", "stepp"),
        ("{}", "empty"),
    ],
)
def test_bad_spaces_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_space(_write(tmp_path, text))


def test_grid_needs_a_float_step(tmp_path: Path) -> None:
    space = load_space(_write(tmp_path, "train.lr: {type: float, low: 0.1, high: 0.3}"))
    with pytest.raises(UserError, match="without a step"):
        grid(space)


@pytest.mark.parametrize(
    ("config", "task", "metric"),
    [
        ("configs/kge/wn18rr/complex-sce.yaml", "kge", "mrr"),
        ("configs/mf/ml-1m/sgd-mf.yaml", "mf", "rmse"),
        ("configs/lm/ptb/small.yaml", "lm", "perplexity"),
    ],
)
def test_task_detection(config: str, task: str, metric: str) -> None:
    from embedlab.tune.tasks import detect

    path = Path(__file__).resolve().parents[2] / config
    spec = detect(path, None)
    assert (spec.name, spec.metric) == (task, metric)
    with pytest.raises(UserError, match="--task"):
        detect(path, "nmt")
