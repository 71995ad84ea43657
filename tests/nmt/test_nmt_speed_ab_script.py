"""benchmarks/nmt_speed_ab.py on the tiny synthetic corpus: every variant times the same batches,
and the reported medians and ratios are those of its runs."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nmt.corpus import TINY, write_parallel

ROOT = Path(__file__).resolve().parents[2]


def test_speed_ab_reports_medians_and_ratios(tmp_path: Path) -> None:
    corpus = write_parallel(tmp_path / "corpus")
    tiny = [s for s in TINY if not s.startswith("train.num_threads=")]
    sets = [x for s in [f"dataset={corpus}", *tiny] for x in ("--set", s)]
    out = tmp_path / "ab.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "nmt_speed_ab.py"), "--batches", "2",
         "--repeats", "2", "--torch-dropout", "--json", str(out), *sets],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert json.loads(done.stdout.strip().splitlines()[-1]) == result
    # no --tcmalloc: glibc only; --torch-dropout: one more bf16 variant
    assert set(result["runs"]) == {"fp32+glibc", "bf16+glibc", "bf16+glibc+torch_dropout"}
    assert {r["dropout"] for r in result["runs"]["bf16+glibc+torch_dropout"]} == {
        "torch nn.Dropout"
    }
    assert {r["dropout"] for r in result["runs"]["bf16+glibc"]} == {"Dropout16"}
    assert all(r["dropouts_replaced"] > 0 for r in result["runs"]["bf16+glibc+torch_dropout"])
    assert all(r["dropouts_replaced"] == 0 for r in result["runs"]["bf16+glibc"])
    for key, runs in result["runs"].items():
        assert len(runs) == 2
        times = [r["s_per_step"] for r in runs]
        assert result["median_s_per_step"][key] == pytest.approx(statistics.median(times))
        # the same seed and batches: the same valid loss in every round
        assert runs[0]["valid_loss"] == runs[1]["valid_loss"], key
    base = result["median_s_per_step"]["fp32+glibc"]
    bf16 = result["median_s_per_step"]["bf16+glibc"]
    assert result["speedup_vs_fp32_glibc"]["bf16+glibc"] == pytest.approx(base / bf16)

    missing = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "nmt_speed_ab.py"), "--tcmalloc",
         str(tmp_path / "nope.so"), *sets],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert missing.returncode == 2 and "no such file" in missing.stderr
    clash = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "nmt_speed_ab.py"), *sets, "--set",
         "train.precision=bf16"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert clash.returncode == 2 and "train.precision" in clash.stderr
