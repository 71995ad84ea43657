from pathlib import Path

import pytest

from embedlab.config.io import dump_config
from embedlab.errors import UserError
from embedlab.kge.config import build_config


def test_defaults_and_overrides_are_typed() -> None:
    cfg = build_config(overrides=["train.lr=0.5", "model.name=distmult", "eval.every=3"])
    assert cfg.train.lr == 0.5 and cfg.model.name == "distmult" and cfg.eval.every == 3


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.lrr=0.1", "train.lrr"),
        ("model.dim=abc", "model.dim"),
        ("train.optimizer=sgd", "train.optimizer"),
        ("entity_embedding.dropout=1.5", "entity_embedding.dropout"),
    ],
)
def test_bad_keys_and_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        build_config(overrides=[override])


def test_override_without_equals_is_a_user_error() -> None:
    with pytest.raises(UserError, match="key=value"):
        build_config(overrides=["train.lr"])


def test_yaml_file_and_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("dataset: nations\ntrain: {lr: 0.25}\n")
    cfg = build_config(path=path)
    assert cfg.dataset == "nations" and cfg.train.lr == 0.25
    again = tmp_path / "again.yaml"
    again.write_text(dump_config(cfg))
    assert build_config(path=again) == cfg


def test_missing_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        build_config(path=tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        build_config(path=bad)
