"""benchmarks/sse_nmt_grid.py and sse_nmt_report.py (issue 15, part 3) on the tiny synthetic corpus:
the paired cells differ only in SSE-SE, each run lands in the JSON with BLEU and its signature, and
the report's mean, sd and paired difference equal those computed from the rows."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.nmt.corpus import TINY, write_parallel

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)


def test_paired_configs_differ_only_in_sse() -> None:
    base = yaml.safe_load((ROOT / "configs/nmt/multi30k/transformer-small.yaml").read_text())
    sse = yaml.safe_load((ROOT / "configs/nmt/multi30k/transformer-small-sse.yaml").read_text())
    assert {k: v for k, v in sse.items() if k not in ("source_embedding", "target_embedding")} == {
        k: v for k, v in base.items() if k not in ("source_embedding", "target_embedding")
    }
    for table in ("source_embedding", "target_embedding"):
        assert sse[table] == {"sse": {"kind": "se", "p": 0.01}}
        assert base.get(table, {}).get("sse", {}).get("kind", "none") == "none"


def test_grid_and_report_on_a_tiny_corpus(tmp_path: Path) -> None:
    corpus = write_parallel(tmp_path / "corpus")
    runs, out = tmp_path / "runs", tmp_path / "nmt.json"
    tiny = [s for s in TINY if not s.startswith("train.num_threads=")]  # the grid's --threads
    sets = [x for s in [f"dataset={corpus}", *tiny] for x in ("--set", s)]
    keys = ["base-s0", "sse-p0.01-s0", "sse-p0.1-s0"]
    grid = _run(str(BENCH / "sse_nmt_grid.py"), "--runs", str(runs), "--json", str(out),
                "--threads", "1", "--parallel", "2", "--epochs", "2", "--only", *keys, *sets)  # fmt: skip
    assert grid.returncode == 0, grid.stdout + grid.stderr
    data = json.loads(out.read_text())
    assert data["budget"]["epochs"] == 2 and data["budget"]["train_minutes"] is None
    assert sorted(data["cells"]) == sorted(keys)  # in the order they finished
    for key in keys:
        cell = data["cells"][key]
        run_metrics = json.loads((runs / key / "metrics.json").read_text())
        assert cell["returncode"] == 0 and cell["test"]["bleu"] == run_metrics["test"]["bleu"], key
        assert cell["valid"]["loss"] == run_metrics["valid"]["loss"], key
        assert cell["test"]["sacrebleu_signature"].startswith("nrefs:1|")
        assert "--set seed=0" in cell["command"] and "--set train.max_epochs=2" in cell["command"]
        assert "max_minutes" not in cell["command"] and cell["parallel"] == 2, key
        assert cell["timing"]["epochs"] == 2, key
    saved = yaml.safe_load((runs / "sse-p0.1-s0" / "config.yaml").read_text())
    for table in ("source_embedding", "target_embedding"):  # the sweep's p reached both tables
        assert (saved[table]["sse"]["kind"], saved[table]["sse"]["p"]) == ("se", 0.1)

    # another budget into the same JSON is refused, and so is a --set of a key the grid sets
    clash = _run(str(BENCH / "sse_nmt_grid.py"), "--runs", str(runs), "--json", str(out),
                 "--epochs", "2", "--only", "sse-p0.1-s0", *sets, "--set", "target_embedding.sse.p=0.5")  # fmt: skip
    assert clash.returncode != 0 and "target_embedding.sse.p" in clash.stderr
    for budget in (["--epochs", "3"], ["--epochs", "2", "--minutes", "7"]):
        mixed = _run(str(BENCH / "sse_nmt_grid.py"), "--runs", str(runs), "--json", str(out),
                     *budget, "--only", "base-s1", *sets)  # fmt: skip
        assert mixed.returncode != 0 and "another --json" in mixed.stderr, budget
    timed = _run(str(BENCH / "sse_nmt_grid.py"), "--runs", str(runs), "--json", str(out),
                 "--minutes", "7", "--parallel", "2", "--only", "base-s1", *sets)  # fmt: skip
    assert timed.returncode == 2 and "--parallel" in timed.stderr

    report = _run(str(BENCH / "sse_nmt_report.py"), str(out), "--runs", str(runs),
                  "--png", str(tmp_path / "curves"), "--write")  # fmt: skip
    assert report.returncode == 0, report.stderr
    summary = json.loads(report.stdout.strip().splitlines()[-1])
    bleu = {k: data["cells"][k]["test"]["bleu"] for k in keys}
    assert summary["groups"]["baseline"]["test_bleu"] == {
        "n": 1,
        "mean": bleu["base-s0"],
        "sd": None,
    }
    paired = summary["paired_sse_minus_baseline"]
    assert paired["n"] == 1
    assert paired["mean"] == pytest.approx(bleu["sse-p0.01-s0"] - bleu["base-s0"])
    assert summary["groups"]["sse-se p=0.1"]["test_bleu"]["mean"] == bleu["sse-p0.1-s0"]
    for key in keys:  # per-run columns against the trace read line by line
        events = [json.loads(x) for x in (runs / key / "trace.jsonl").read_text().splitlines()]
        valid = [e["loss"] for e in events if e["event"] == "valid"]
        train = [e["loss"] for e in events if e["event"] == "epoch"]
        row = summary["per_run"][key]
        assert (row["best_epoch_valid_loss"], row["last_valid_loss"]) == (min(valid), valid[-1])
        assert row["best_epoch"] == 1 + valid.index(min(valid)) and row["last_epoch"] == 2
        assert row["last_train_loss"] == train[-1] and row["test_bleu"] == bleu[key]
    for name in ("loss", "loss-end", "bleu", "sweep"):
        assert (tmp_path / f"curves-{name}.png").stat().st_size > 1000
    assert summary["curves"][-1] == str(tmp_path / "curves-sweep.png")
    assert json.loads(out.read_text())["summary"]["groups"] == summary["groups"]


def test_report_sd_is_the_sample_sd() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import sse_nmt_report
    finally:
        sys.path.remove(str(BENCH))
    cells = {
        f"base-s{s}": {"p": None, "seed": s, "test": {"bleu": b, "loss": n}}
        for s, (b, n) in enumerate([(30.0, 2.0), (32.0, 1.9), (34.0, 1.8)])
    }
    cells |= {
        f"sse-p0.01-s{s}": {"p": 0.01, "seed": s, "test": {"bleu": b, "loss": n}}
        for s, (b, n) in enumerate([(31.0, 1.95), (32.5, 1.8)])
    }
    cells["sse-p0.1-s2"] = {"p": 0.1, "seed": 2, "test": {"bleu": 33.0, "loss": 1.85}}
    cells["sse-p0.1-s5"] = {"p": 0.1, "seed": 5, "test": {"bleu": 40.0}}  # no baseline seed 5
    summary = sse_nmt_report.summarize({"cells": cells})
    assert summary["groups"]["baseline"]["test_bleu"] == {"n": 3, "mean": 32.0, "sd": 2.0}
    diffs = [1.0, 0.5]
    assert summary["paired_sse_minus_baseline"] == {
        "n": 2,
        "mean": 0.75,
        "sd": pytest.approx(statistics.stdev(diffs)),
    }
    assert summary["groups"]["baseline"]["test_loss"]["mean"] == pytest.approx(1.9)
    by_p = summary["paired_by_p"]
    assert by_p["0.01"]["seeds"] == [0, 1]
    assert by_p["0.01"]["test_loss"]["diffs"] == pytest.approx([-0.05, -0.1])
    assert by_p["0.1"]["seeds"] == [2]  # seed 5 has no baseline to pair with
    assert by_p["0.1"]["test_bleu"] == {"n": 1, "mean": -1.0, "sd": None, "diffs": [-1.0]}
    assert "| p=0.1 | 2 | -1.00 |" in sse_nmt_report.markdown(summary)

    # the sweep curve: the lowest seed with more than one p, baseline first, unfinished left out
    for cell in cells.values():
        cell["returncode"] = 0
    assert sse_nmt_report.sweep_runs({"cells": cells}) == []  # no seed has two p values
    cells |= {
        "sse-p0.03-s2": {"p": 0.03, "seed": 2, "returncode": 0},
        "sse-p0.003-s2": {"p": 0.003, "seed": 2, "returncode": 0},
        "sse-p0.3-s2": {"p": 0.3, "seed": 2, "returncode": None},
        "sse-p0.03-s7": {"p": 0.03, "seed": 7, "returncode": 0},
        "sse-p0.1-s7": {"p": 0.1, "seed": 7, "returncode": 0},
    }
    assert sse_nmt_report.sweep_runs({"cells": cells}) == [
        "base-s2", "sse-p0.003-s2", "sse-p0.03-s2", "sse-p0.1-s2"
    ]  # fmt: skip
