"""``train_nmt`` end to end on a tiny synthetic corpus: run directory, BLEU in metrics.json,
resume after an interruption, and the CLI (translate, evaluate, user errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from embedlab.cli.main import main
from embedlab.nmt.run import train_nmt
from embedlab.training.loop import Loop
from tests.nmt.corpus import TINY, tiny_config, write_parallel

SSE = ["source_embedding.sse.kind=se", "source_embedding.sse.p=0.1",
       "target_embedding.sse.kind=graph", "target_embedding.sse.p=0.1"]  # fmt: skip


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_parallel(tmp_path / "corpus")


def test_trains_resumes_and_reports_bleu(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(corpus, *SSE)
    whole = train_nmt(cfg, tmp_path / "whole", progress=False)
    run = tmp_path / "whole"
    for name in ("config.yaml", "trace.jsonl", "metrics.json", "spm.model",
                 "translations/test.txt", "checkpoints/averaged.safetensors"):  # fmt: skip
        assert (run / name).is_file(), name
    saved = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= saved["test"]["bleu"] <= 100.0
    assert saved["test"]["sacrebleu_signature"].startswith("nrefs:1|")
    assert saved["selected"] == {"checkpoint": "averaged", "epochs": [2, 3]}
    assert len((run / "translations/test.txt").read_text().splitlines()) == 20
    events = [json.loads(line) for line in (run / "trace.jsonl").read_text().splitlines()]
    valid = [e for e in events if e["event"] == "valid"]
    assert len(valid) == 3 and all({"loss", "bleu_greedy"} <= e.keys() for e in valid)
    assert valid[-1]["loss"] < valid[0]["loss"]
    assert [p.name for p in sorted((run / "checkpoints").glob("epoch-*"))] == [
        "epoch-0002.safetensors", "epoch-0003.safetensors"]  # fmt: skip

    calls = {"n": 0}
    real = Loop._train_epoch

    def dying(self: Loop, generator: torch.Generator) -> tuple[float, int, int, float]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed in epoch 3: checkpoints/last holds epoch 2
        return real(self, generator)

    monkeypatch.setattr(Loop, "_train_epoch", dying)
    with pytest.raises(KeyboardInterrupt):
        train_nmt(cfg, tmp_path / "cut", progress=False)
    monkeypatch.undo()
    vocab_before = (tmp_path / "cut/spm.model").read_bytes()
    resumed = train_nmt(cfg, tmp_path / "cut", progress=False)
    assert (tmp_path / "cut/spm.model").read_bytes() == vocab_before
    assert resumed["test"]["bleu"] == whole["test"]["bleu"]
    assert resumed["test"]["loss"] == whole["test"]["loss"]
    a = load_file(str(run / "checkpoints/averaged.safetensors"))
    b = load_file(str(tmp_path / "cut/checkpoints/averaged.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert '"event": "resume"' in (tmp_path / "cut/trace.jsonl").read_text()


def test_cli_train_translate_evaluate_and_errors(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    sets = [arg for item in [*TINY, "train.max_epochs=2"] for arg in ("--set", item)]
    args = ["nmt", "train", "--dataset", str(corpus), "--out", str(out), "--no-progress"]
    assert main([*args, *sets]) == 0
    assert "test: BLEU" in capsys.readouterr().out
    source = tmp_path / "input.txt"
    source.write_text("w1 w2 w3\n\nw4 w5\n", encoding="utf-8")
    assert main(["nmt", "translate", str(out), "--input", str(source)]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""  # 3 lines, blank kept
    assert main(["nmt", "evaluate", str(out), "--split", "test"]) == 0
    printed = json.loads(capsys.readouterr().out.splitlines()[-1])
    saved = json.loads((out / "metrics.json").read_text())["test"]
    assert printed["bleu"] == pytest.approx(saved["bleu"]) and printed["beam"] == 2
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"w1 w2\nw3 \xff\n")
    for argv in (
        ["nmt", "translate", str(out), "--input", str(bad)],
        ["nmt", "translate", str(out), "--input", str(tmp_path / "missing.txt")],
        ["nmt", "translate", str(tmp_path / "nothing"), "--input", str(source)],
        ["nmt", "evaluate", str(out), "--split", "train"],
        [*args, "--set", "model.heads=3"],
        [*args, "--set", "source_embedding.sse.kind=graph",
         "--set", "source_embedding.sse.graph=wordnet"],
    ):  # fmt: skip
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error:") and "Traceback" not in err
        if str(bad) in argv:
            assert f"{bad}:2: not valid UTF-8" in err
