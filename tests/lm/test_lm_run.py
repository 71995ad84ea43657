"""``train_lm`` end to end on tiny corpora: run directory, learning, resume after an interruption,
KD teachers from ``train.init_from``, and the CLI (exit code 2 on user errors)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from embedlab.cli.main import main
from embedlab.config.io import build_typed_config
from embedlab.errors import UserError
from embedlab.lm import run as lm_run
from embedlab.lm.config import LmConfig
from embedlab.lm.load import load_run
from embedlab.training.loop import Loop
from tests.conftest import write_tiny_corpus
from tests.embeddings.kd_oracles import dense_oracle

FAST = ["model.embedding_dim=8", "model.hidden=8", "train.batch_size=4", "train.bptt=6",
        "train.num_threads=1", "eval.batch_size=2", "train.decay_after=2"]  # fmt: skip


# a tiny 2-layer LSTM at U(-0.1, 0.1) sits on the unigram plateau for many epochs; this one
# learns the cycle within a few (lr 1 with Zaremba's sum-over-time loss)
LEARNS = ["model.layers=1", "model.hidden=16", "model.embedding_dim=16", "model.init_scale=0.3"]


def config(data: Path, *over: str) -> LmConfig:
    base = [f"dataset={data}", "train.max_epochs=4", *FAST]
    return build_typed_config(LmConfig, overrides=base + list(over))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_tiny_corpus(tmp_path / "corpus")


def test_run_directory_contract_and_learning(corpus: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = config(corpus, "train.max_epochs=6", *LEARNS)
    metrics = lm_run.train_lm(cfg, run_dir, progress=False)
    for name in ("config.yaml", "trace.jsonl", "metrics.json"):
        assert (run_dir / name).is_file(), name
    for which in ("last", "best"):
        for suffix in (".safetensors", ".json"):
            assert (run_dir / "checkpoints" / f"{which}{suffix}").is_file(), which + suffix
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert {"valid", "test", "timing", "best_epoch", "compression", "dataset"} <= saved.keys()
    assert saved["valid"]["perplexity"] == pytest.approx(metrics["valid"]["perplexity"])
    assert saved["compression"] is None and saved["dataset"]["vocab"] == 13  # 12 words + <eos>
    assert saved["timing"]["epochs"] == 6
    # the noisy cycle is learnable: far below the unigram perplexity (about 12.5)
    assert metrics["test"]["perplexity"] < 6
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["lr"] for e in epochs] == [1, 1, 0.5, 0.25, 0.125, 0.0625]
    for key in ("train_perplexity", "seconds", "rows_per_s"):
        assert all(key in e for e in epochs), key
    valid = [e for e in events if e["event"] == "valid"]
    assert len(valid) == 6 and all("perplexity" in e for e in valid)
    assert events[-2]["event"] == "stop" and events[-1]["event"] == "test"
    # a completed run re-run: nothing retrained, same metrics
    again = lm_run.train_lm(cfg, run_dir, progress=False)
    assert again["test"]["perplexity"] == metrics["test"]["perplexity"]
    assert again["timing"]["epochs"] == 6


DROP = ["model.dropout=0.3", "token_embedding.sse.kind=se", "token_embedding.sse.p=0.2",
        "output_embedding.sse.kind=se", "output_embedding.sse.p=0.1"]  # fmt: skip
KD = ["token_embedding.kind=kd", "token_embedding.kd.K=4", "token_embedding.kd.D=3",
      "token_embedding.kd.code_dim=4", "token_embedding.kd.relaxation=gumbel"]  # fmt: skip


@pytest.mark.parametrize("extra", [DROP, KD], ids=["dropout+sse", "kd-gumbel"])
def test_interrupted_run_resumes_to_the_same_result(
    extra: list[str], corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(corpus, *extra)
    whole = lm_run.train_lm(cfg, tmp_path / "whole", progress=False)

    calls = {"n": 0}
    real = Loop._train_epoch

    def dying(self: Loop, generator: torch.Generator) -> tuple[float, int, int, float]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed during epoch 3: checkpoints/last holds epoch 2
        return real(self, generator)

    monkeypatch.setattr(Loop, "_train_epoch", dying)
    with pytest.raises(KeyboardInterrupt):
        lm_run.train_lm(cfg, tmp_path / "cut", progress=False)
    monkeypatch.undo()
    assert (
        json.loads((tmp_path / "cut/checkpoints/last.json").read_text())["state"]["loop"]["epoch"]
        == 2
    )
    resumed = lm_run.train_lm(cfg, tmp_path / "cut", progress=False)
    for split in ("valid", "test"):
        assert resumed[split]["perplexity"] == whole[split]["perplexity"]
    a = load_file(str(tmp_path / "whole/checkpoints/last.safetensors"))
    b = load_file(str(tmp_path / "cut/checkpoints/last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        if not key.startswith("rng."):
            assert torch.equal(a[key], b[key]), key
    events = (tmp_path / "cut/trace.jsonl").read_text()
    assert '"event": "resume"' in events


def test_a_different_config_on_an_existing_run_is_refused(corpus: Path, tmp_path: Path) -> None:
    lm_run.train_lm(config(corpus, "train.max_epochs=1"), tmp_path / "run", progress=False)
    with pytest.raises(UserError, match="different config"):
        lm_run.train_lm(config(corpus, "train.max_epochs=1", "train.lr=0.5"), tmp_path / "run")


def test_max_batches_caps_an_epoch(corpus: Path, tmp_path: Path) -> None:
    cfg = config(corpus, "train.max_epochs=1", "train.max_batches=3")
    metrics = lm_run.train_lm(cfg, tmp_path / "run", progress=False)
    assert metrics["timing"]["rows"] == 3 * 4 * 6  # windows x batch x bptt (tokens)


def test_zero_epochs_evaluates_the_initial_model(corpus: Path, tmp_path: Path) -> None:
    metrics = lm_run.train_lm(config(corpus, "train.max_epochs=0"), tmp_path / "run")
    assert metrics["timing"]["epochs"] == 0 and metrics["best_epoch"] == 0
    assert 10 < metrics["test"]["perplexity"] < 16  # about uniform over 13 words
    _, _, model = load_run(tmp_path / "run")  # checkpoints/last holds the initial model
    assert not model.training


def test_time_budget_stops_training_and_still_reports(corpus: Path, tmp_path: Path) -> None:
    cfg = config(corpus, "train.max_minutes=1e-7")
    metrics = lm_run.train_lm(cfg, tmp_path / "run", progress=False)
    assert metrics["timing"]["stop_reason"].startswith("time budget")
    assert metrics["timing"]["epochs"] == 1 and metrics["test"]["perplexity"] > 1
    events = [json.loads(line) for line in (tmp_path / "run/trace.jsonl").read_text().splitlines()]
    assert [e["batches"] for e in events if e["event"] == "epoch"] == [1]


PDG = ["token_embedding.kind=kd", "token_embedding.kd.guidance=pdg", "token_embedding.kd.K=4",
       "token_embedding.kd.D=3", "token_embedding.kd.code_dim=4",
       "token_embedding.kd.distill_epochs=2"]  # fmt: skip


def test_init_from_passes_the_teacher_table(corpus: Path, tmp_path: Path) -> None:
    teacher_dir = tmp_path / "teacher"
    lm_run.train_lm(config(corpus, "train.max_epochs=2"), teacher_dir, progress=False)
    _, _, teacher = load_run(teacher_dir)
    cfg = config(corpus, "train.max_epochs=1", f"train.init_from={teacher_dir}", *PDG)
    metrics = lm_run.train_lm(cfg, tmp_path / "student", progress=False)
    trace = (tmp_path / "student/trace.jsonl").read_text()
    assert trace.count('"event": "distill"') == 2
    # no task epochs: the saved table is the distilled one, whose relative error
    # ||V - U||^2 / ||U||^2 is computed from a row-by-row dense oracle of its codes
    distilled = config(corpus, "train.max_epochs=0", f"train.init_from={teacher_dir}", *PDG)
    reported = lm_run.train_lm(distilled, tmp_path / "distilled", progress=False)
    _, _, only_distilled = load_run(tmp_path / "distilled")
    dense = dense_oracle(only_distilled.token_embedding)  # (V, d)
    target = teacher.token_embedding.weight.detach()
    error = float((dense - target).pow(2).sum() / target.pow(2).sum())
    table = reported["compression"]["tables"]["token_embedding"]
    assert table["distill_relative_error"] == pytest.approx(error, rel=1e-5)
    trained = metrics["compression"]["tables"]["token_embedding"]
    assert trained["distill_relative_error"] == table["distill_relative_error"]  # same stage
    # the teacher is a buffer of the KD layer: the student evaluates without the teacher run
    shutil.rmtree(teacher_dir)
    _, _, student = load_run(tmp_path / "student")
    assert torch.equal(student.token_embedding.teacher, teacher.token_embedding.weight)
    # re-running the finished run resumes from its checkpoint (no teacher run needed) and
    # reports the distillation error its trace recorded
    again = lm_run.train_lm(cfg, tmp_path / "student", progress=False)
    assert again["compression"] == metrics["compression"]
    assert (tmp_path / "student/trace.jsonl").read_text().count('"event": "distill"') == 2
    (tmp_path / "student/trace.jsonl").unlink()  # a resume without its trace: no error recorded
    bare = lm_run.train_lm(cfg, tmp_path / "student", progress=False)
    assert "distill_relative_error" not in bare["compression"]["tables"]["token_embedding"]
    # mismatches are user errors
    with pytest.raises(UserError, match="not a run directory"):
        lm_run.train_lm(cfg, tmp_path / "student2", progress=False)
    other = write_tiny_corpus(tmp_path / "other", words=9)
    lm_run.train_lm(config(other, "train.max_epochs=1"), tmp_path / "t9", progress=False)
    wrong_vocab = config(corpus, f"train.init_from={tmp_path / 't9'}", *PDG)
    with pytest.raises(UserError, match="vocabulary differs"):
        lm_run.train_lm(wrong_vocab, tmp_path / "s9", progress=False)
    lm_run.train_lm(config(corpus, "train.max_epochs=1"), tmp_path / "t8", progress=False)
    wide = config(corpus, f"train.init_from={tmp_path / 't8'}", *PDG, "model.embedding_dim=6")
    with pytest.raises(UserError, match="8 wide, model.embedding_dim is 6"):
        lm_run.train_lm(wide, tmp_path / "s8", progress=False)
    useless = config(corpus, f"train.init_from={tmp_path / 't8'}")
    with pytest.raises(UserError, match="no table uses it"):
        lm_run.train_lm(useless, tmp_path / "s7", progress=False)


def test_cli_train_evaluate_and_user_errors(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    sets = [arg for item in FAST for arg in ("--set", item)]
    args = ["lm", "train", "--dataset", str(corpus), "--out", str(out), "--no-progress"]
    assert main([*args, *sets, "--set", "train.max_epochs=1"]) == 0
    assert "test: perplexity" in capsys.readouterr().out
    assert main(["lm", "evaluate", str(out), "--split", "valid"]) == 0
    printed = json.loads(capsys.readouterr().out.splitlines()[-1])
    lines = (corpus / "valid.txt").read_text(encoding="utf-8").splitlines()
    stream = sum(len(line.split()) + 1 for line in lines)  # words and one <eos> per line
    rows = 2  # eval.batch_size: B streams of T = stream // B tokens, B (T - 1) predicted
    assert printed["tokens"] == rows * (stream // rows - 1)
    assert printed["perplexity"] == pytest.approx(math.exp(printed["loss"]), rel=1e-9)
    saved = json.loads((out / "metrics.json").read_text())["valid"]
    assert printed["perplexity"] == pytest.approx(saved["perplexity"], rel=1e-9)
    for argv in (
        [*args, "--set", "model.bogus=1"],
        [*args, "--set", "model.tie_weights=true", "--set", "model.hidden=7"],
        ["lm", "train", "--dataset", str(tmp_path / "missing"), "--out", str(tmp_path / "x")],
        ["lm", "evaluate", str(tmp_path / "nothing")],
        ["lm", "evaluate", str(out), "--split", "train"],
        [*args, "--set", "token_embedding.sse.kind=graph"],
        [*args, "--set", "device=cuda:7"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error:") and "Traceback" not in err
        if "sse.kind=graph" in argv:
            assert "token_embedding.sse.kind=graph: no graph over the vocabulary" in err
    bad = write_tiny_corpus(tmp_path / "bad")
    (bad / "valid.txt").write_text(" w1 w2\n w1 unseen\n", encoding="utf-8")
    assert main(["lm", "train", "--dataset", str(bad), "--out", str(tmp_path / "b")]) == 2
    assert "valid.txt:2: word 'unseen'" in capsys.readouterr().err
