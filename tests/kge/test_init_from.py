"""--init-from: a run starts from another run's best weights, across losses (paper 002, table 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.cli.main import main
from embedlab.kge.run import train_run
from tests.conftest import fast_config


def test_init_from_copies_the_source_weights_across_losses(tmp_path: Path) -> None:
    src = tmp_path / "src"
    train_run(
        fast_config("nations", **{"loss.name": "sans", "train.type": "negative_sampling"}), src
    )
    dst = tmp_path / "dst"
    # zero epochs: the final evaluation sees exactly the initial (copied) weights
    rc = main(
        ["kge", "train", "--dataset", "nations", "--out", str(dst), "--init-from", str(src),
         "--set", "model.dim=16", "--set", "train.max_epochs=0", "--set", "train.num_threads=1"]
    )  # fmt: skip
    assert rc == 0
    want = json.loads((src / "metrics.json").read_text())["test"]
    got = json.loads((dst / "metrics.json").read_text())["test"]
    assert got["mrr"] == pytest.approx(want["mrr"], rel=1e-6)
    fresh = tmp_path / "fresh"
    main(["kge", "train", "--dataset", "nations", "--out", str(fresh), "--set", "model.dim=16",
          "--set", "train.max_epochs=0"])  # fmt: skip
    other = json.loads((fresh / "metrics.json").read_text())["test"]
    assert other["mrr"] != pytest.approx(want["mrr"], rel=1e-6)


def test_init_from_a_misfit_run_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    train_run(fast_config("nations", **{"train.max_epochs": 1}), src)
    args = ["kge", "train", "--dataset", "nations", "--out", str(tmp_path / "d"), "--init-from"]
    assert main([*args, str(src), "--set", "model.dim=8"]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "nothing")]) == 2
