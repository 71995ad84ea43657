"""``torchrun --nproc-per-node 2 -m embedlab kge train`` on 2 gloo CPU ranks against one process.

Tolerances: a 2-rank step sums two half-batch gradients (each a sum in fp32) where one process
sums the batch in one go; the two differ by reduction order only, ~1e-7 relative per step. With
Adagrad the update is a smooth function of the gradient and after 34 steps the tables
differ by ~1e-6 (seen: 9.5e-7 and 1.2e-6 with Adagrad); the tests allow 1e-5. Adam divides by
sqrt(v), which amplifies rounding where v is small (seen: 8e-5), so Adam runs are compared on
metrics only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from embedlab.distributed import free_port
from embedlab.training.trace import read_trace
from tests.distributed.launch import (
    cli_argv,
    kill_job_after,
    node_argv,
    run,
    start,
)


def _train(nproc: int | None, out: Path, *sets: str) -> str:
    args = ["kge", "train", "--dataset", "kinship", "--model", "distmult", "--no-progress",
            "--out", str(out)]  # fmt: skip
    for item in ("seed=3", "model.dim=16", "train.batch_size=500", "train.lr=0.1",
                 "train.num_threads=1", *sets):  # fmt: skip
        args += ["--set", item]
    return run(cli_argv(nproc, *args)).stdout


def _model_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors = load_file(str(run_dir / "checkpoints" / "last.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith("model.")}


# negative sampling draws its negatives per rank (like SSE): not comparable parameter by parameter
@pytest.mark.parametrize("training", ["1vsAll", "KvsAll"])
def test_two_ranks_train_the_same_parameters_as_one_process(training: str, tmp_path: Path) -> None:
    sets = ("train.optimizer=adagrad", "train.max_epochs=2", f"train.type={training}")
    _train(None, tmp_path / "one", *sets)
    _train(2, tmp_path / "two", *sets)
    one, two = _model_tensors(tmp_path / "one"), _model_tensors(tmp_path / "two")
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-5, msg=key)


def test_trace_metrics_and_console_come_from_rank_0_only(tmp_path: Path) -> None:
    sets = ("train.max_epochs=2", "train.optimizer=adam")
    _train(None, tmp_path / "one", *sets)
    out = tmp_path / "two"
    stdout = _train(2, out, *sets)
    assert stdout.count("test: MRR") == 1
    events = read_trace(out / "trace.jsonl")
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2 and starts[0]["backend"] == "gloo"
    epochs = [e for e in events if e["event"] == "epoch"]
    single = [e for e in read_trace(tmp_path / "one" / "trace.jsonl") if e["event"] == "epoch"]
    assert len(epochs) == 2
    # rows and loss over both ranks: those of one process (rank 1's half is not dropped)
    assert [e["rows"] for e in epochs] == [e["rows"] for e in single]
    assert epochs[0]["loss"] == pytest.approx(single[0]["loss"], rel=1e-5)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["timing"]["world_size"] == 2
    reference = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert abs(metrics["test"]["mrr"] - reference["test"]["mrr"]) < 1e-3


@pytest.mark.parametrize("sharding", ["none", "row_wise"])
def test_killed_two_rank_job_resumes_to_the_uninterrupted_metrics(
    sharding: str, tmp_path: Path
) -> None:
    sets = ("train.max_epochs=8", "train.checkpoint_every=1", "train.optimizer=adagrad",
            "eval.every=4", "train.batch_size=128", "entity_embedding.sse.kind=se",
            "entity_embedding.sse.p=0.1", f"entity_embedding.sharding={sharding}")  # fmt: skip
    _train(2, tmp_path / "whole", *sets)
    cut = tmp_path / "cut"
    args = ["kge", "train", "--dataset", "kinship", "--model", "distmult", "--no-progress",
            "--out", str(cut)]  # fmt: skip
    for item in ("seed=3", "model.dim=16", "train.lr=0.1", "train.num_threads=1", *sets):
        args += ["--set", item]
    kill_job_after(start(cli_argv(2, *args)), cut / "checkpoints" / "last.safetensors")
    assert not (cut / "metrics.json").exists()
    run(cli_argv(2, *args))
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((cut / "metrics.json").read_text())
    for split in ("valid", "test"):
        assert resumed[split]["mrr"] == whole[split]["mrr"]
        assert resumed[split]["hits@10"] == whole[split]["hits@10"]
    assert any(e["event"] == "resume" for e in read_trace(cut / "trace.jsonl"))
    for key, value in _model_tensors(tmp_path / "whole").items():
        assert torch.equal(_model_tensors(cut)[key], value), key


def test_row_wise_sharded_entities_train_like_a_dense_table_in_one_process(tmp_path: Path) -> None:
    """TorchRec row-wise shards (fused Adagrad) on 2 ranks, and on a 1-rank group, against a
    plain table in one process: the same parameters to fp32 rounding, the same metrics."""
    sets = ("train.optimizer=adagrad", "train.max_epochs=2")
    _train(None, tmp_path / "dense", *sets)
    _train(2, tmp_path / "two", *sets, "entity_embedding.sharding=row_wise")
    _train(None, tmp_path / "one", *sets, "entity_embedding.sharding=row_wise")
    dense = _model_tensors(tmp_path / "dense")
    for name in ("two", "one"):
        sharded = _model_tensors(tmp_path / name)
        # the checkpoint holds the full table and the fused Adagrad state (exact resume)
        assert "model.entities.optimizer_state.momentum1" in sharded
        for key, value in dense.items():
            torch.testing.assert_close(sharded[key], value, rtol=0, atol=1e-5, msg=key)
    metrics = [json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("dense", "two")]
    assert abs(metrics[0]["test"]["mrr"] - metrics[1]["test"]["mrr"]) < 1e-4
    # a sharded run's directory loads into a plain table in one process (evaluate/export)
    done = run(cli_argv(None, "kge", "evaluate", str(tmp_path / "two")))
    assert json.loads(done.stdout.splitlines()[-1])["mrr"] == metrics[1]["test"]["mrr"]


def test_kd_codes_train_under_ddp_reproducibly_with_per_rank_gumbel_noise(tmp_path: Path) -> None:
    sets = ("train.max_epochs=2", "train.optimizer=adam", "entity_embedding.kind=kd",
            "entity_embedding.kd.K=8", "entity_embedding.kd.D=4",
            "entity_embedding.kd.relaxation=gumbel")  # fmt: skip
    _train(2, tmp_path / "a", *sets)
    _train(2, tmp_path / "b", *sets)
    a, b = _model_tensors(tmp_path / "a"), _model_tensors(tmp_path / "b")
    for key in a:
        assert torch.equal(a[key], b[key]), key  # rank seeds are reproducible
    _train(None, tmp_path / "one", *sets)
    one = _model_tensors(tmp_path / "one")
    assert not torch.equal(one["model.entities.logits"], a["model.entities.logits"])  # rank 1 draws


def test_two_nodes_joined_by_c10d_rendezvous_train_like_one_standalone_job(tmp_path: Path) -> None:
    """Multi-node launch (``--nnodes 2 --rdzv-endpoint``), both "nodes" on this machine."""
    args = ["kge", "train", "--dataset", "nations", "--model", "distmult", "--no-progress",
            "--set", "seed=2", "--set", "train.max_epochs=3", "--set", "train.num_threads=1"]  # fmt: skip
    endpoint = f"127.0.0.1:{free_port()}"
    jobs = [start(node_argv(endpoint, 2, "-m", "embedlab", *args, "--out", str(tmp_path / "mn")))
            for _ in range(2)]  # fmt: skip
    for job in jobs:
        _, err = job.communicate(timeout=180)
        assert job.returncode == 0, err.decode()[-3000:]
    run(cli_argv(2, *args, "--out", str(tmp_path / "standalone")))
    events = read_trace(tmp_path / "mn" / "trace.jsonl")
    assert events[0]["world_size"] == 2
    a = json.loads((tmp_path / "mn" / "metrics.json").read_text())
    b = json.loads((tmp_path / "standalone" / "metrics.json").read_text())
    assert a["test"]["mrr"] == b["test"]["mrr"]


def test_kd_entropy_penalty_of_the_global_batch_matches_one_process(tmp_path: Path) -> None:
    """KD's entropy term averages over a batch's unique rows (not a sum over rank slices):
    each rank adds it for the global batch, so 2 ranks train the 1-process parameters."""
    sets = ("train.max_epochs=1", "train.optimizer=adagrad", "entity_embedding.kind=kd",
            "entity_embedding.kd.K=8", "entity_embedding.kd.D=4",
            "entity_embedding.kd.entropy_weight=0.5")  # fmt: skip
    _train(None, tmp_path / "one", *sets)
    _train(2, tmp_path / "two", *sets)
    one, two = _model_tensors(tmp_path / "one"), _model_tensors(tmp_path / "two")
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-5, msg=key)


def test_kd_frozen_codes_leave_parameters_unused_and_ddp_still_steps(tmp_path: Path) -> None:
    """``kd.freeze_codes``: the code logits get no gradient; DDP must not wait for them."""
    sets = ("train.max_epochs=2", "train.optimizer=adagrad", "entity_embedding.kind=kd",
            "entity_embedding.kd.K=4", "entity_embedding.kd.D=4",
            "entity_embedding.kd.freeze_codes=true")  # fmt: skip
    _train(2, tmp_path / "two", *sets)
    _train(None, tmp_path / "one", *sets)
    one, two = _model_tensors(tmp_path / "one"), _model_tensors(tmp_path / "two")
    for key in one:  # the step with unused logits is the one-process step
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-5, msg=key)
