"""The CLI end to end on tiny data: train, evaluate, export, predict; exit code 2 on user errors."""

from __future__ import annotations

import json
import math
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


def _predict(run_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[tuple]:
    """``(rank, entity, printed score)`` lines of ``embedlab kge predict`` (not the line naming
    the removed known answers)."""
    capsys.readouterr()
    assert main(["kge", "predict", str(run_dir), *args]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [line.split() for line in lines if not line.startswith("removed ")]
    return [(int(rank), name, float(score)) for rank, name, score in rows]


def _complex_scores(data: np.lib.npyio.NpzFile, given: str, relation: str, side: str) -> dict:
    """ComplEx ``Re(<s, r, conj(o)>)`` of every answer to (given, relation, ?) (``side="tail"``) or
    (?, relation, given) (``side="head"``, the reciprocal relation), by numpy from the export."""
    entities = [str(e) for e in data["entity_ids"]]
    relations = [str(r) for r in data["relation_ids"]]
    ent = data["entity_embeddings"].astype(np.float64)  # (N, d): real parts, then imaginary
    z = ent[:, : ent.shape[1] // 2] + 1j * ent[:, ent.shape[1] // 2 :]  # (N, d/2)
    table = "relation_embeddings" if side == "tail" else "reciprocal_relation_embeddings"
    rel = data[table][relations.index(relation)].astype(np.float64)
    w = rel[: len(rel) // 2] + 1j * rel[len(rel) // 2 :]  # (d/2,)
    subject = z[entities.index(given)]
    return {e: float(np.real(np.sum(subject * w * np.conj(z[k])))) for k, e in enumerate(entities)}


@pytest.mark.parametrize(
    ("flag", "given", "side"), [("--head", "brazil", "tail"), ("--tail", "usa", "head")]
)
def test_predict_equals_brute_force_ranking_of_the_export(
    flag: str, given: str, side: str, run_dir: Path, tmp_path: Path, capsys
) -> None:
    """The top-k answers are the k best of the exported embeddings' ComplEx scores, in order
    (every entity ranked: --no-filter-known; the filtered ranking: tests/cli/test_predict_cli.py)."""
    assert main(["kge", "export", str(run_dir), str(tmp_path / "emb.npz")]) == 0
    scores = _complex_scores(np.load(tmp_path / "emb.npz"), given, "embassy", side)
    ranking = sorted(scores, key=lambda e: -scores[e])
    query = [flag, given, "--relation", "embassy", "--no-filter-known"]
    for top_k in (3, 10):
        got = _predict(run_dir, capsys, *query, "--top-k", str(top_k))
        assert [rank for rank, _, _ in got] == list(range(1, top_k + 1))
        assert [name for _, name, _ in got] == ranking[:top_k]
        for _, name, printed in got:  # printed with 4 decimals
            assert abs(printed - scores[name]) <= 5e-5 + 1e-6, name
    everything = _predict(run_dir, capsys, *query, "--top-k", "99")
    assert [name for _, name, _ in everything] == ranking  # top-k capped at the 14 entities


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


# A tiny learning rate: validation MRR stalls (no gain at most validations), so a plateau
# scheduler with patience 0 has reason to decay after nearly every validation.
STALL = [
    *FAST,
    "--set",
    "train.max_epochs=5",
    "--set",
    "train.lr=1e-5",
    "--set",
    "train.lr_patience=0",
]


def _trace(out: Path, event: str) -> list[dict]:
    lines = (out / "trace.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event]


def _plateau_lrs(lr: float, factor: float, valid_mrrs: list[float]) -> list[float]:
    """The LR of each epoch under "decay by ``factor`` after every validation whose MRR does not
    beat the best so far by a relative 1e-4" (ReduceLROnPlateau, mode max, patience 0; every
    epoch is validated and an epoch's LR is logged before its validation)."""
    lrs, best = [], -math.inf
    for mrr in valid_mrrs:
        lrs.append(lr)
        if mrr > best * (1 + 1e-4):  # best starts at -inf
            best = mrr
        else:
            lr *= factor
    return lrs


def test_lr_decay_one_disables_the_scheduler(tmp_path: Path) -> None:
    out = tmp_path / "nodecay"
    argv = ["kge", "train", "--dataset", "nations", "--out", str(out), *STALL]
    assert main([*argv, "--set", "train.lr_decay=1"]) == 0
    mrrs = [e["mrr"] for e in _trace(out, "valid")]
    assert len(mrrs) == 5
    assert _plateau_lrs(1e-5, 0.5, mrrs) != [1e-5] * 5  # a scheduler would have decayed
    assert [e["lr"] for e in _trace(out, "epoch")] == [1e-5] * 5


def test_lr_decay_below_one_decays_when_validation_stalls(tmp_path: Path) -> None:
    out = tmp_path / "decay"
    argv = ["kge", "train", "--dataset", "nations", "--out", str(out), *STALL]
    assert main([*argv, "--set", "train.lr_decay=0.5"]) == 0
    mrrs = [e["mrr"] for e in _trace(out, "valid")]
    want = _plateau_lrs(1e-5, 0.5, mrrs)
    assert want[-1] < 1e-5, "no stall in this run: the test would not test the decay"
    assert [e["lr"] for e in _trace(out, "epoch")] == pytest.approx(want, rel=1e-12)


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
