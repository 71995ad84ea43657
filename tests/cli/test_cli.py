"""The CLI end to end on tiny data: train, evaluate, export, predict; exit code 2 on user errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedlab.cli.main import main

FAST = [
    "--set",
    "model.dim=16",
    "--set",
    "train.max_epochs=3",
    "--set",
    "train.num_threads=1",
    "--set",
    "eval.every=1",
    "--set",
    "train.batch_size=64",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "nations"
    assert (
        main(
            ["kge", "train", "--dataset", "nations", "--model", "complex", "--out", str(out), *FAST]
        )
        == 0
    )
    return out


def test_run_directory_contract(run_dir: Path) -> None:
    for name in (
        "config.yaml",
        "trace.jsonl",
        "metrics.json",
        "checkpoints/last.safetensors",
        "checkpoints/last.json",
        "checkpoints/best.safetensors",
        "checkpoints/best.json",
    ):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for split in ("valid", "test"):
        for key in ("mrr", "mr", "hits@1", "hits@3", "hits@10"):
            assert (
                key in metrics[split]
                and key in metrics[split]["head"]
                and key in metrics[split]["tail"]
            )
    assert metrics["timing"]["epochs"] == 3
    events = [
        json.loads(line)["event"] for line in (run_dir / "trace.jsonl").read_text().splitlines()
    ]
    assert events.count("epoch") == 3 and events.count("valid") == 3 and "test" in events


def test_evaluate_reproduces_metrics(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kge", "evaluate", str(run_dir), "--split", "test"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert printed["mrr"] == pytest.approx(saved["mrr"])


def test_export_npz(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.npz"
    assert main(["kge", "export", str(run_dir), str(out)]) == 0
    data = np.load(out)
    assert data["entity_embeddings"].shape == (14, 16)
    assert data["relation_embeddings"].shape == (55, 16)
    assert len(data["entity_ids"]) == 14 and len(data["relation_ids"]) == 55


def test_predict_by_name(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert (
        main(
            [
                "kge",
                "predict",
                str(run_dir),
                "--head",
                "brazil",
                "--relation",
                "embassy",
                "--top-k",
                "3",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[0] == "1"
    assert main(["kge", "predict", str(run_dir), "--tail", "usa", "--relation", "embassy"]) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["kge", "predict", "RUN", "--head", "atlantis", "--relation", "embassy"],
        ["kge", "predict", "RUN", "--relation", "embassy"],
        ["kge", "evaluate", "RUN", "--split", "train"],
        ["kge", "evaluate", "/nonexistent/run"],
        ["kge", "train", "--out", "OUT", "--dataset", "nope"],
        ["kge", "train", "--out", "OUT", "--set", "train.bogus=1"],
        ["kge", "train", "--out", "OUT", "--model", "transformer"],
        ["kge", "train", "--unknown-flag"],
    ],
)
def test_user_errors_exit_2_without_traceback(
    argv: list[str], run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(run_dir) if a == "RUN" else str(tmp_path / "o") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()


def test_malformed_dataset_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import write_kg

    folder = write_kg(tmp_path / "bad")
    (folder / "train.txt").write_text("a\tr\tb\nbroken line\n")
    assert main(["kge", "train", "--dataset", str(folder), "--out", str(tmp_path / "o")]) == 2
    assert "train.txt:2" in capsys.readouterr().err


def test_datasets_list_and_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "wn18rr" in out and "fb15k-237" in out and "umls" in out
    assert main(["datasets", "info", "nations"]) == 0
    assert "entities: 14" in capsys.readouterr().out


def test_overwrite_refuses_a_directory_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    argv = ["kge", "train", "--dataset", "nations", "--out", str(precious), "--overwrite"]
    assert main(argv) == 2
    assert (precious / "thesis.tex").is_file()
    assert "refusing" in capsys.readouterr().err


def test_lr_decay_one_disables_the_scheduler(tmp_path: Path) -> None:
    out = tmp_path / "nodecay"
    assert (
        main(
            [
                "kge",
                "train",
                "--dataset",
                "nations",
                "--out",
                str(out),
                *FAST,
                "--set",
                "train.lr_decay=1",
            ]
        )
        == 0
    )


def test_time_budget_stops_training(tmp_path: Path) -> None:
    out = tmp_path / "budget"
    argv = [
        "kge",
        "train",
        "--dataset",
        "nations",
        "--out",
        str(out),
        *FAST,
        "--set",
        "train.max_epochs=100000",
        "--set",
        "train.max_minutes=0.02",
    ]
    assert main(argv) == 0
    timing = json.loads((out / "metrics.json").read_text())["timing"]
    assert timing["stop_reason"].startswith("time budget")
    assert timing["train_and_valid_seconds"] < 0.02 * 60 + 5
