"""benchmarks/kd_joint_step.py on small tables: the pooled and dense compositions agree, and the
reported medians and ratios are those of the timed steps."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_joint_step_reports_agreement_medians_and_ratios(tmp_path: Path) -> None:
    out = tmp_path / "joint.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "kd_joint_step.py"), "--threads", "1",
         "--repeats", "3", "--rows", "200", "--presets", "fb15k-237", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert json.loads(done.stdout) == doc
    assert [r["setting"] for r in doc["results"]] == [
        "32:26:128",
        "16:15:128",
        "16:10:64",
        "16:6:32",
    ]
    for row in doc["results"]:
        assert row["rows"] == 200 and row["dim"] == 128
        for name, times in row["seconds"].items():
            assert len(times) == 3
            assert row["median_seconds"][name] == pytest.approx(statistics.median(times))
        med = row["median_seconds"]
        assert row["dense_over_pooled"] == pytest.approx(med["dense"] / med["pooled"])
        assert row["max_abs_diff_rows"] < 1e-9
        assert row["max_abs_diff_grads"] < 1e-9
        assert row["grads_compared"] == [
            "codebook", "compose.proj.bias", "compose.proj.weight", "encoder.0.bias",
            "encoder.0.weight", "encoder.2.bias", "encoder.2.weight",
        ]  # fmt: skip
