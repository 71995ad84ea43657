"""``embedlab lm export``: the tables and vocabulary round-trip through the .npz file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from embedlab.cli.main import main
from embedlab.lm.load import load_run
from tests.conftest import write_tiny_corpus

FAST = ["--set", "model.embedding_dim=8", "--set", "model.hidden=8", "--set", "train.max_epochs=1",
        "--set", "train.batch_size=4", "--set", "train.bptt=6", "--set", "train.num_threads=1",
        "--set", "eval.batch_size=2", "--no-progress"]  # fmt: skip


@pytest.mark.parametrize("tied", [False, True])
def test_export_round_trips(tmp_path: Path, tied: bool, capsys) -> None:
    corpus = write_tiny_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    extra = ["--set", f"model.tie_weights={str(tied).lower()}"]
    assert main(["lm", "train", "--dataset", str(corpus), "--out", str(run), *FAST, *extra]) == 0
    assert main(["lm", "export", str(run), str(tmp_path / "lm.npz")]) == 0
    assert f"wrote {tmp_path / 'lm.npz'}" in capsys.readouterr().out
    data = np.load(tmp_path / "lm.npz")
    _, vocab, model = load_run(run)
    with torch.no_grad():
        tokens = model.token_embedding.lookup_all().numpy()
    np.testing.assert_array_equal(data["token_embeddings"], tokens)
    np.testing.assert_array_equal(data["output_bias"], model.bias.detach().numpy())
    assert list(data["vocab"]) == vocab.vocab and len(vocab.vocab) == 13  # 12 words + <eos>
    assert data["token_embeddings"].shape == (13, 8)
    if tied:
        assert "output_embeddings" not in data
    else:
        assert model.output_embedding is not None
        with torch.no_grad():
            output = model.output_embedding.lookup_all().numpy()
        np.testing.assert_array_equal(data["output_embeddings"], output)
