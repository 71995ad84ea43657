"""``embedlab kge predict``: known answers filtered and named, batch files equal single queries,
malformed query files name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedlab.cli.main import main
from embedlab.datasets.resolve import resolve_dataset_dir
from embedlab.kge.run import train_run
from tests.conftest import fast_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "nations"
    over = {"model.name": "distmult", "train.max_epochs": 1, "eval.every": 1}
    train_run(fast_config("nations", **over), out, progress=False)
    return out


def _train() -> list[tuple[str, ...]]:
    text = (resolve_dataset_dir("nations") / "train.txt").read_text(encoding="utf-8")
    return [tuple(line.split("\t")) for line in text.splitlines() if line.strip()]


def _single(run_dir: Path, capsys, *args: str) -> tuple[list[tuple[int, str, float]], list[str]]:
    """``(rank, answer, score)`` rows and the other lines of one ``kge predict`` call."""
    capsys.readouterr()
    assert main(["kge", "predict", str(run_dir), *args]) == 0
    rows, other = [], []
    for line in capsys.readouterr().out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit():
            rows.append((int(parts[0]), parts[1], float(parts[2])))
        else:
            other.append(line)
    return rows, other


@pytest.mark.parametrize(("flag", "given"), [("--head", "brazil"), ("--tail", "usa")])
def test_known_answers_are_removed_and_named(run_dir: Path, capsys, flag: str, given: str) -> None:
    if flag == "--head":
        known = {t for h, r, t in _train() if h == given and r == "embassy"}
    else:
        known = {h for h, r, t in _train() if t == given and r == "embassy"}
    assert known
    rows, other = _single(run_dir, capsys, flag, given, "--relation", "embassy", "--top-k", "14")
    assert not known & {name for _, name, _ in rows}
    assert len(rows) == 14 - len(known)
    assert len(other) == 1 and other[0].startswith(f"removed {len(known)} known answers (train): ")
    assert set(other[0].split(": ", 1)[1].split(", ")) == known
    unfiltered, none = _single(
        run_dir, capsys, flag, given, "--relation", "embassy", "--top-k", "14", "--no-filter-known"
    )
    assert not none and {name for _, name, _ in unfiltered} >= known
    # the filtered list is the unfiltered one without the known answers, order kept
    assert [n for _, n, _ in unfiltered if n not in known] == [n for _, n, _ in rows]


def test_filter_splits_all_names_each_split(run_dir: Path, capsys) -> None:
    _, other = _single(
        run_dir, capsys, "--tail", "usa", "--relation", "embassy", "--filter-splits", "all"
    )
    assert other[0].startswith("removed ") and "(train, valid, test): " in other[0]
    assert "(valid)" in other[0] or "(test)" in other[0]


def test_batch_file_equals_single_queries(run_dir: Path, tmp_path: Path, capsys) -> None:
    queries = [
        ("brazil", "embassy", "?"),
        ("?", "embassy", "usa"),
        ("china", "treaties", "?"),
        ("?", "intergovorgs", "egypt"),
        ("uk", "exports3", "?"),
    ]
    path = tmp_path / "queries.tsv"
    path.write_text("\n".join("\t".join(q) for q in queries[:2]) + "\n\n"
                    + "\n".join("\t".join(q) for q in queries[2:]) + "\n")  # fmt: skip
    out = tmp_path / "top.tsv"
    argv = ["kge", "predict", str(run_dir), "--input", str(path), "--output", str(out)]
    assert main([*argv, "--top-k", "4"]) == 0
    assert "5 queries, 20 answers" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert lines[0].split("\t") == ["head", "relation", "tail", "rank", "answer", "score"]
    batch = [line.split("\t") for line in lines[1:]]
    assert len(batch) == 20
    for i, (h, r, t) in enumerate(queries):
        args = ["--head", h] if t == "?" else ["--tail", t]
        rows, _ = _single(run_dir, capsys, *args, "--relation", r, "--top-k", "4")
        mine = batch[4 * i : 4 * i + 4]
        assert [tuple(row[:3]) for row in mine] == [(h, r, t)] * 4
        assert [(int(row[3]), row[4]) for row in mine] == [(k, n) for k, n, _ in rows]
        for row, (_, _, printed) in zip(mine, rows, strict=True):
            assert abs(float(row[5]) - printed) <= 5e-5 + 1e-6


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("brazil\tembassy\t?\nbrazil\tembassy\n", ":2: expected 3 tab-separated fields"),
        ("brazil\tembassy\t?\n\n?\tembassy\t?\n", ":3: put '?' in exactly one"),
        ("brazil\tembassy\tusa\n", ":1: put '?' in exactly one"),
        ("brazil\tembassy\t?\natlantis\tembassy\t?\n", ":2: unknown entity 'atlantis'"),
        ("?\tembasy\tusa\n", ":1: unknown relation 'embasy' in dataset nations"),
        ("\n\n", ": no queries"),
        (b"brazil\tembassy\t?\n\xff\tembassy\t?\n", ":2: not valid UTF-8"),
    ],
)
def test_malformed_query_file_names_file_and_line(
    run_dir: Path, tmp_path: Path, capsys, content: str | bytes, needle: str
) -> None:
    path = tmp_path / "q.tsv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    argv = ["kge", "predict", str(run_dir), "--input", str(path), "--output", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{path}{needle}" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["--input", "Q", "--head", "brazil", "--output", "O"],
        ["--input", "Q"],
        ["--head", "brazil", "--relation", "embassy", "--output", "O"],
        ["--head", "brazil"],
        ["--input", "/nonexistent/q.tsv", "--output", "O"],
        ["--input", "Q", "--output", "/nonexistent/dir/o.tsv"],
        ["--head", "brazil", "--relation", "embassy", "--filter-splits", "training"],
    ],
)
def test_argument_mistakes_exit_2(run_dir: Path, tmp_path: Path, capsys, args: list[str]) -> None:
    query = tmp_path / "q.tsv"
    query.write_text("brazil\tembassy\t?\n")
    swap = {"Q": str(query), "O": str(tmp_path / "o.tsv")}
    assert main(["kge", "predict", str(run_dir), *[swap.get(a, a) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
