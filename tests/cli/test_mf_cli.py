"""``embedlab mf recommend | fold-in | export`` against the library (itself checked against brute
force in tests/recsys/test_recommend.py); ratings files with mistakes name file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.cli.main import main
from embedlab.recsys.recommend import MfPredictor
from tests.conftest import write_ratings


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = write_ratings(tmp_path_factory.mktemp("mf") / "ratings")
    out = data.parent / "run"
    argv = ["mf", "train", "--dataset", str(data), "--method", "als", "--out", str(out),
            "--set", "model.dim=4", "--set", "train.max_epochs=3", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return out


def _lines(capsys, argv: list[str]) -> list[str]:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out.splitlines()


def test_recommend_prints_the_library_ranking(run_dir: Path, capsys) -> None:
    want = MfPredictor.from_run(run_dir).recommend("u7", k=6)
    lines = _lines(capsys, ["mf", "recommend", str(run_dir), "--user", "u7", "--top-k", "6"])
    rows = [line.split() for line in lines[:-1]]
    assert [(int(r[0]), r[1]) for r in rows] == [(r.rank, r.item) for r in want]
    assert [float(r[2]) for r in rows] == pytest.approx([r.score for r in want], abs=5e-5)
    assert lines[-1] == f"excluded {want.excluded} items rated by user u7 (train)"
    everything = _lines(capsys, ["mf", "recommend", str(run_dir), "--user", "u7", "--top-k",
                                 "100", "--include-rated"])  # fmt: skip
    assert len(everything) == 30  # every item, no exclusion line


def test_fold_in_prints_the_library_recommendations(run_dir: Path, tmp_path: Path, capsys) -> None:
    ratings = tmp_path / "me.tsv"
    ratings.write_text("i1\t5\n\ni2\t1.5\ni7\t4\n")
    predictor = MfPredictor.from_run(run_dir)
    user = predictor.fold_in({"i1": 5.0, "i2": 1.5, "i7": 4.0})
    want = predictor.recommend(user, k=4)
    lines = _lines(capsys, ["mf", "fold-in", str(run_dir), "--ratings", str(ratings),
                            "--top-k", "4"])  # fmt: skip
    assert lines[0].startswith("folded in a new user from 3 ratings: ")
    assert f"bias {user.bias:.4f}" in lines[0]
    rows = [line.split() for line in lines[1:-1]]
    assert [r[1] for r in rows] == [r.item for r in want]
    assert not {"i1", "i2", "i7"} & {r[1] for r in rows}
    assert lines[-1] == "excluded 3 items the new user rated"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("i1\t5\ni2\n", ":2: expected 2 tab-separated fields"),
        ("i1\t5\ni2\tgreat\n", ":2: rating 'great' is not a number"),
        ("i1\t5\n\ni2\t6\n", ":3: rating 6 outside the scale"),
        ("i1\t5\ni999\t3\n", ":2: unknown item 'i999' in dataset"),
        ("\n", ": no ratings"),
    ],
)
def test_bad_ratings_file_names_file_and_line(
    run_dir: Path, tmp_path: Path, capsys, content: str, needle: str
) -> None:
    path = tmp_path / "me.tsv"
    path.write_text(content)
    assert main(["mf", "fold-in", str(run_dir), "--ratings", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}{needle}" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["mf", "recommend", "RUN", "--user", "nobody"],
        ["mf", "recommend", "RUN", "--user", "u1", "--exclude-splits", "test"],
        ["mf", "fold-in", "RUN", "--ratings", "/nonexistent.tsv"],
        ["mf", "export", "RUN", "/nonexistent/dir/x.npz"],
        ["mf", "recommend", "/nonexistent/run", "--user", "u1"],
    ],
)
def test_user_errors_exit_2(run_dir: Path, capsys, argv: list[str]) -> None:
    assert main([str(run_dir) if a == "RUN" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_export_round_trips(run_dir: Path, tmp_path: Path, capsys) -> None:
    lines = _lines(capsys, ["mf", "export", str(run_dir), str(tmp_path / "mf")])
    assert lines == [f"wrote {tmp_path / 'mf.npz'}"]
    data = np.load(tmp_path / "mf.npz")
    p = MfPredictor.from_run(run_dir)
    model = p.model
    np.testing.assert_array_equal(data["user_embeddings"], model.users.weight.detach().numpy())
    np.testing.assert_array_equal(data["item_embeddings"], model.items.weight.detach().numpy())
    np.testing.assert_array_equal(data["user_bias"], model.user_bias.detach().numpy())
    np.testing.assert_array_equal(data["item_bias"], model.item_bias.detach().numpy())
    assert float(data["mean"]) == float(model.mean)
    assert list(data["user_ids"]) == p.dataset.user_ids
    assert list(data["item_ids"]) == p.dataset.item_ids
    # the exported arrays reproduce the model's predicted ratings
    u, i = 5, 11
    rating = data["mean"] + data["user_bias"][u] + data["item_bias"][i]
    rating += data["user_embeddings"][u] @ data["item_embeddings"][i]
    assert float(rating) == pytest.approx(float(p.predict(u, i)[0]), abs=1e-5)
