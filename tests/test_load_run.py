"""``embedlab.load_run``: one entry point for every task's run directory; ``import embedlab``
stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import embedlab
from embedlab.errors import UserError
from embedlab.kge.predict import KgePredictor
from embedlab.kge.run import train_run
from embedlab.lm.predictor import LmPredictor
from embedlab.recsys.recommend import MfPredictor
from tests.cli.test_lm_export import FAST as LM_FAST
from tests.conftest import fast_config, write_ratings, write_tiny_corpus


def test_import_embedlab_loads_no_task_code() -> None:
    code = (
        "import sys, embedlab; "
        "print(sorted(m for m in sys.modules if m.startswith(('embedlab.', 'torch'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_task_gets_its_predictor(tmp_path: Path) -> None:
    from embedlab.cli.main import main

    kge = tmp_path / "kge"
    train_run(fast_config("nations", **{"train.max_epochs": 1}), kge, progress=False)
    data = write_ratings(tmp_path / "ratings")
    mf = tmp_path / "mf"
    mf_argv = ["mf", "train", "--dataset", str(data), "--out", str(mf), "--set", "model.dim=3",
               "--set", "train.max_epochs=1", "--no-progress"]  # fmt: skip
    assert main(mf_argv) == 0
    corpus = write_tiny_corpus(tmp_path / "corpus")
    lm = tmp_path / "lm"
    assert main(["lm", "train", "--dataset", str(corpus), "--out", str(lm), *LM_FAST]) == 0

    p = embedlab.load_run(kge)
    assert isinstance(p, KgePredictor) and len(p.predict_tails("brazil", "embassy", k=2)) == 2
    m = embedlab.load_run(str(mf))
    assert isinstance(m, MfPredictor) and len(m.recommend("u1", k=3)) == 3
    lang = embedlab.load_run(lm)
    assert isinstance(lang, LmPredictor)
    assert set(lang.embeddings().vocab) == {f"w{i}" for i in range(12)} | {"<eos>"}


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a run directory"):
        embedlab.load_run(tmp_path)
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(UserError, match="not the config of a KGE, MF, LM or NMT run"):
        embedlab.load_run(tmp_path)
