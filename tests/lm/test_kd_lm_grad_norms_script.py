"""benchmarks/kd_lm_grad_norms.py: per-module gradient norms before the clip, on a tiny corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_tiny_corpus

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "kd_lm_grad_norms.py"
TINY = ["model.embedding_dim=8", "model.hidden=8", "train.batch_size=4", "train.bptt=6",
        "eval.batch_size=2", "token_embedding.kd.K=4", "token_embedding.kd.D=3",
        "token_embedding.kd.code_dim=4"]  # fmt: skip


def _run(
    out: Path, corpus: Path, label: str, *sets: str, extra: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(SCRIPT), "--label", label, "--batches", "5", "--out", str(out),
            "--config", "configs/lm/ptb/kd-ablation/2-cr-ste.yaml", *(extra or [])]  # fmt: skip
    for s in [f"dataset={corpus}", *TINY, *sets]:
        args += ["--set", s]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


def test_records_every_step_and_the_clip_fraction(tmp_path: Path) -> None:
    corpus = write_tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "norms.json"
    loose = _run(out, corpus, "loose", "train.clip=1e9", "token_embedding.kd.composition=lstm")
    assert loose.returncode == 0, loose.stderr
    tight = _run(out, corpus, "tight", "train.clip=1e-6")
    assert tight.returncode == 0, tight.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"loose", "tight"}  # merged, not overwritten
    assert data["loose"]["steps"] == data["tight"]["steps"] == 5
    assert data["loose"]["clipped_fraction"] == 0.0 and data["tight"]["clipped_fraction"] == 1.0
    assert (
        list(data["loose"]["per_epoch"]) == ["1"] and data["loose"]["per_epoch"]["1"]["steps"] == 5
    )
    two = _run(out, corpus, "two", "train.clip=1e-6", extra=["--epochs", "2"])
    assert two.returncode == 0, two.stderr
    per_epoch = json.loads(out.read_text())["two"]["per_epoch"]
    assert [per_epoch[e]["steps"] for e in ("1", "2")] == [5, 5]
    assert all(per_epoch[e]["clipped_fraction"] == 1.0 for e in ("1", "2"))
    groups = data["loose"]["first_quarter"]
    assert {"lstm", "output_embedding", "token_embedding.compose.lstm"} <= set(groups), groups


@pytest.mark.parametrize(
    ("name", "group"),
    [("lstm.weight_hh_l0", "lstm"), ("output_embedding.weight", "output_embedding"),
     ("token_embedding.compose.lstm.weight_ih_l0", "token_embedding.compose.lstm"),
     ("token_embedding.encoder.0.weight", "token_embedding.encoder"),
     ("token_embedding.codebook", "token_embedding.codebook")],
)  # fmt: skip
def test_groups(name: str, group: str) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import kd_lm_grad_norms
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert kd_lm_grad_norms.group_of(name) == group
