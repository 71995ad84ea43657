"""Search-space YAML: parsing, errors naming the key, grid enumeration."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedlab.errors import UserError
from embedlab.tune.space import grid, load_space, settings


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


GROUPS = """
init:
  type: group
  choices:
    normal: {user_embedding.init.name: normal, user_embedding.init.scale: 0.1}
    xavier: {user_embedding.init.name: xavier_normal, user_embedding.init.scale: 1.0}
regularizer:
  type: group
  choices:
    light: {train.weight_decay: 0.01, user_embedding.dropout: 0.1}
    heavy: {train.weight_decay: 0.1, user_embedding.dropout: 0.3}
train.lr: {type: categorical, choices: [0.01, 0.005]}
"""


def test_groups_enumerate_names_and_expand_to_their_keys(tmp_path: Path) -> None:
    space = load_space(_write(tmp_path, GROUPS))
    assert grid(space) == {
        "init": ["normal", "xavier"], "regularizer": ["light", "heavy"], "train.lr": [0.01, 0.005],
    }  # fmt: skip
    params = {"init": "xavier", "regularizer": "heavy", "train.lr": 0.005}
    assert settings(space, params) == {
        "user_embedding.init.name": "xavier_normal", "user_embedding.init.scale": 1.0,
        "train.weight_decay": 0.1, "user_embedding.dropout": 0.3, "train.lr": 0.005,
    }  # fmt: skip
    with pytest.raises(UserError, match="regularizer='medium' is not in the search space"):
        settings(space, {**params, "regularizer": "medium"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GROUPS + "train.weight_decay: {type: categorical, choices: [0.1]}\n",
         "train.weight_decay is set by both regularizer and train.weight_decay"),
        ("g: {type: group, choices: {a: {}}}", "choice 'a' sets no key"),
        ("g: {type: group, choices: {}}", "g.group.choices"),
        ("g: {type: group, choices: {a: {train.lr: [1, 2]}}}", "g.group.choices.a.train.lr"),
    ],
)  # fmt: skip
def test_bad_groups(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_space(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("config", "task", "metric"),
    [
        ("configs/kge/wn18rr/complex-sce.yaml", "kge", "mrr"),
        ("configs/mf/ml-1m/sgd-mf.yaml", "mf", "rmse"),
        ("configs/lm/ptb/small.yaml", "lm", "perplexity"),
        ("configs/nmt/multi30k/transformer-small-sse.yaml", "nmt", "loss"),
        ("configs/gcn/cora/features.yaml", "gcn", "accuracy"),
        ("configs/gcn/cora/embedding-kd.yaml", "gcn", "accuracy"),
    ],
)
def test_task_detection(config: str, task: str, metric: str) -> None:
    from embedlab.tune.tasks import detect

    path = Path(__file__).resolve().parents[2] / config
    spec = detect(path, None)
    assert (spec.name, spec.metric) == (task, metric)
    with pytest.raises(UserError, match="--task"):
        detect(path, "hashing")  # not a task
    other = next(name for name in ("gcn", "kge") if name != task)
    with pytest.raises(UserError):  # another task's schema refuses the config
        detect(path, other)
