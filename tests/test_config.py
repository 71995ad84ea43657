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


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["loss.name=sce", "loss.label_smoothing=0.1"], "loss.label_smoothing is not used by loss 'sce'"),
        (["loss.name=sce_ls", "loss.margin=3"], "loss.margin is not used by loss 'sce_ls'"),
        (["loss.name=ns", "loss.freq_power=0.75"], "loss.freq_power is not used by loss 'ns'"),
        (["train.type=KvsAll", "train.negatives.tail=5"], "train.negatives is read by"),
    ],
)  # fmt: skip
def test_keys_the_method_does_not_read_are_rejected(overrides: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_config(overrides=overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        ["loss.name=sce_ls", "loss.label_smoothing=0.1"],
        ["loss.name=sans", "loss.adversarial_temperature=0.5", "loss.margin=6"],
        ["loss.name=ns_freq", "loss.freq_power=0.75", "loss.freq_reading=weighted"],
        ["train.type=negative_sampling", "train.negatives.tail=5"],
    ],
)
def test_keys_the_method_reads_are_accepted(overrides: list[str]) -> None:
    config = build_config(overrides=overrides)
    key, _, value = overrides[-1].partition("=")
    section, *rest = key.split(".")
    node = getattr(config, section)
    for part in rest:
        node = getattr(node, part)
    assert str(node) == value or node == float(value)
