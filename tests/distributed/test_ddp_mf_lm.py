"""``mf train`` (SGD) and ``lm train`` under torchrun with 2 gloo ranks against one process.

MF: the ranks exchange their slices' row updates and apply them in batch order, the same
arithmetic as one process (per-row dot products do not depend on the batch split), so the
tables agree to fp32 rounding (1e-6). LM: gradients of half the streams are averaged by DDP;
rounding of the two-part sum grows through the LSTM over 2 epochs (tolerance 1e-4, seen ~1e-6).
SSE and dropout draw per rank: runs with them are compared with themselves (reproducible).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.conftest import write_ratings, write_tiny_corpus
from tests.distributed.launch import cli_argv, run


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


MF = _sets("model.dim=4", "train.max_epochs=6", "train.batch_size=64", "train.lr=0.05",
           "train.weight_decay=0.01", "train.num_threads=1", "data.valid_fraction=0.1",
           "user_embedding.regularize.kind=lp", "user_embedding.regularize.weight=0.01",
           "user_embedding.regularize.weighted=true")  # fmt: skip
LM = _sets("train.max_epochs=2", "model.embedding_dim=8", "model.hidden=8",
           "train.batch_size=4", "train.bptt=6", "eval.batch_size=3", "train.num_threads=1",
           "model.dropout=0.0")  # fmt: skip


def _model(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors = load_file(str(run_dir / "checkpoints" / "last.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith("model.")}


def _train(nproc: int | None, kind: str, data: Path, out: Path, *options: str) -> None:
    run(cli_argv(nproc, kind, "train", "--dataset", str(data), "--no-progress", "--out", str(out),
                 *options))  # fmt: skip


def _close(one: Path, two: Path, atol: float) -> None:
    a, b = _model(one), _model(two)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=atol, msg=key)


def test_mf_sgd_on_two_ranks_trains_the_one_process_tables(tmp_path: Path) -> None:
    data = write_ratings(tmp_path / "data")
    _train(None, "mf", data, tmp_path / "one", *MF)
    _train(2, "mf", data, tmp_path / "two", *MF)
    _close(tmp_path / "one", tmp_path / "two", atol=1e-6)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["test"]["num_ratings"] == one["test"]["num_ratings"]  # evaluation gathered all
    assert abs(two["test"]["rmse"] - one["test"]["rmse"]) < 1e-5
    # ranking metrics: users split over the ranks, sums all-reduced
    assert two["test"]["ranking_users"] == one["test"]["ranking_users"] > 0
    assert abs(two["test"]["ndcg@10"] - one["test"]["ndcg@10"]) < 1e-6


def test_mf_sse_on_two_ranks_is_reproducible(tmp_path: Path) -> None:
    data = write_ratings(tmp_path / "data")
    sse = [*MF, *_sets("item_embedding.sse.kind=se", "item_embedding.sse.p=0.2")]
    _train(2, "mf", data, tmp_path / "a", *sse)
    _train(2, "mf", data, tmp_path / "b", *sse)
    _close(tmp_path / "a", tmp_path / "b", atol=0.0)
    _train(None, "mf", data, tmp_path / "one", *sse)
    a, one = _model(tmp_path / "a"), _model(tmp_path / "one")
    assert not torch.equal(a["model.items.weight"], one["model.items.weight"])  # rank 1 draws


def test_mf_als_under_torchrun_is_refused_with_a_message(tmp_path: Path) -> None:
    data = write_ratings(tmp_path / "data")
    argv = cli_argv(2, "mf", "train", "--dataset", str(data), "--method", "als",
                    "--out", str(tmp_path / "als"))  # fmt: skip
    done = run(argv, check=False)
    assert done.returncode != 0
    assert done.stderr.count("error: train.method=als is not data-parallel") == 2  # each rank
    # torchrun prints its own ChildFailedError summary; no frame of embedlab's code is shown
    assert "embedlab/" not in done.stderr.replace(str(data), "")


def test_lm_on_two_ranks_trains_the_one_process_model(tmp_path: Path) -> None:
    data = write_tiny_corpus(tmp_path / "data")
    _train(None, "lm", data, tmp_path / "one", *LM)
    _train(2, "lm", data, tmp_path / "two", *LM)
    _close(tmp_path / "one", tmp_path / "two", atol=1e-4)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["test"]["tokens"] == one["test"]["tokens"]
    assert abs(two["test"]["loss"] - one["test"]["loss"]) < 1e-4
