"""`embedlab kge evaluate --by relation` and the new metrics.json keys (1-epoch nations run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.cli.main import main
from embedlab.datasets.kg import load_kg

FAST = ["--set", "model.dim=8", "--set", "train.max_epochs=1", "--set", "train.num_threads=1",
        "--set", "eval.every=1", "--set", "train.batch_size=256"]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "nations"
    args = ["kge", "train", "--dataset", "nations", "--model", "distmult", "--out", str(out)]
    assert main([*args, *FAST, "--no-progress"]) == 0
    return out


def test_metrics_json_keeps_its_keys_and_adds_raw_adjusted_by_relation(run_dir: Path) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["test"]
    keys = ("mrr", "mr", "hits@1", "hits@3", "hits@10", "adjusted_mrr", "amri")
    for key in (*keys, "num_queries", "seconds", "queries_per_s", "head", "tail"):
        assert key in test
    for side in ("head", "tail"):
        assert set(keys) <= test[side].keys()
    assert set(test["raw"]) == {"mrr", "mr", "hits@1", "hits@3", "hits@10"}
    assert test["raw"]["mr"] >= test["mr"] and test["raw"]["mrr"] <= test["mrr"]
    per = test["by_relation"]
    assert sum(v["num_queries"] for v in per.values()) == test["num_queries"]
    assert set(per) <= set(load_kg("nations").relation_ids)
    assert -1 <= test["amri"] <= 1 and test["adjusted_mrr"] <= 1


def test_evaluate_by_relation_prints_a_row_per_relation(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kge", "evaluate", str(run_dir), "--split", "test", "--by", "relation"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    saved = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert lines[0].startswith("test: MRR")
    assert "by relation" in lines[1] and lines[2].split()[:2] == ["triples", "MRR"]
    rows = lines[3:]
    assert [row.split()[-1] for row in rows] == list(saved["by_relation"])
    assert sum(int(row.split()[0]) for row in rows) * 2 == saved["num_queries"]
    first = saved["by_relation"][rows[0].split()[-1]]
    assert float(rows[0].split()[1]) == pytest.approx(first["mrr"], abs=5e-5)
    assert float(rows[0].split()[6]) == pytest.approx(first["tail"]["hits@10"], abs=5e-5)


def test_evaluate_without_by_keeps_the_json_line(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kge", "evaluate", str(run_dir)]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["mrr"] == pytest.approx(
        json.loads((run_dir / "metrics.json").read_text())["test"]["mrr"]
    )


def test_evaluate_by_unknown_is_a_user_error(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kge", "evaluate", str(run_dir), "--by", "entity"]) == 2
    err = capsys.readouterr().err
    assert "--by must be relation" in err and "Traceback" not in err
