"""Rating datasets: real statistics (shared data, skipped without it), protocols, hold-outs,
sparse users, malformed files, registry entries and sub-folder downloads."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from embedlab.cli.datasets import app as datasets_app
from embedlab.datasets import rating_files, registry, resolve
from embedlab.datasets.ratings import PROTOCOLS, RatingDataset, load_ratings, read_rating_file
from embedlab.datasets.registry import DatasetSpec, RemoteFile
from embedlab.errors import DatasetError, UserError

RATING_SETS = ("ml-100k", "ml-1m", "ml-1m-kg", "douban")


def shared(name: str) -> Path:
    """``$EMBEDLAB_DATA_DIR/name`` holding the registry's files, else skip the test."""
    env = os.environ.get("EMBEDLAB_DATA_DIR")
    folder = Path(env) / name if env else None
    if folder is None or not all((folder / f).is_file() for f in registry.REGISTRY[name].files):
        pytest.skip(f"shared dataset {name} not available (set EMBEDLAB_DATA_DIR)")
    return folder


def _keys(ds: RatingDataset, split: str) -> list[tuple[str, str, float]]:
    part = ds.splits[split]
    return sorted(
        (ds.user_ids[u], ds.item_ids[i], r)
        for u, i, r in zip(
            part.users.tolist(), part.items.tolist(), part.ratings.tolist(), strict=True
        )
    )


def _naive_file(path: Path, sep: str) -> list[tuple[str, str, float]]:
    rows = [line.split(sep) for line in path.read_text().splitlines() if line.strip()]
    return sorted((p[0], p[1], float(p[2])) for p in rows)


@pytest.fixture(scope="module")
def ml1m() -> RatingDataset:
    shared("ml-1m")
    return load_ratings("ml-1m")


@pytest.fixture(scope="module")
def ml100k() -> RatingDataset:
    shared("ml-100k")
    return load_ratings("ml-100k")


# --- real statistics (PROVENANCE.md) --------------------------------------------------------------


def test_ml1m_sse_statistics(ml1m: RatingDataset) -> None:
    assert ml1m.protocol == "sse" and ml1m.rating_scale == (1.0, 5.0)
    assert (len(ml1m.splits["train"]), len(ml1m.splits["test"])) == (299_200, 338_787)
    assert (ml1m.num_users, ml1m.num_items) == (1_496, 3_656)
    counts = Counter(ml1m.splits["train"].ratings.int().tolist())
    assert counts == {1: 17066, 2: 33621, 3: 81174, 4: 105164, 5: 62175}
    assert [int(u) for u in ml1m.user_ids] == sorted(int(u) for u in ml1m.user_ids)
    assert ml1m.splits["train"].users.dtype == torch.int64
    assert ml1m.splits["train"].ratings.dtype == torch.float32
    per_user = torch.bincount(ml1m.splits["train"].users, minlength=ml1m.num_users)
    assert bool((per_user == 200).all())


def test_ml1m_rows_match_the_file(ml1m: RatingDataset) -> None:
    path = ml1m.source_dir / "sse_mf_split" / "ml1m_train_ratings.csv"
    first = path.read_text().splitlines()[:50]
    part = ml1m.splits["train"]
    for k, line in enumerate(first):
        user, item, rating = line.split(",")
        assert ml1m.user_ids[int(part.users[k])] == user
        assert ml1m.item_ids[int(part.items[k])] == item
        assert float(part.ratings[k]) == float(rating)


def test_ml1m_is_read_by_the_vectorized_path(monkeypatch: pytest.MonkeyPatch) -> None:
    shared("ml-1m")

    def fail(*args: object) -> None:
        raise AssertionError("per-line fallback used on a well-formed file")

    monkeypatch.setattr(rating_files, "_read_lines", fail)
    assert len(load_ratings("ml-1m").splits["train"]) == 299_200


def test_douban_statistics() -> None:
    shared("douban")
    ds = load_ratings("douban")
    assert ds.protocol == "monti" and (ds.num_users, ds.num_items) == (3_000, 3_000)
    assert (len(ds.splits["train"]), len(ds.splits["test"])) == (123_202, 13_689)
    assert ds.user_ids[:3] == ["0", "1", "2"] and ds.item_ids[-1] == "2999"
    assert ds.splits["train"].users.unique().numel() == 2_999
    first = (ds.source_dir / "ratings_train.tsv").read_text().split("\n", 1)[0].split("\t")
    part = ds.splits["train"]
    assert [int(part.users[0]), int(part.items[0]), float(part.ratings[0])] == [
        int(first[0]),
        int(first[1]),
        float(first[2]),
    ]


def test_douban_from_the_published_mat_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h5py is in the ``dev`` extra: a missing h5py fails here (DatasetError), never skips."""
    folder = shared("douban")
    (tmp_path / "douban").mkdir()
    (tmp_path / "douban" / "training_test_dataset.mat").symlink_to(
        folder / "training_test_dataset.mat"
    )
    from_tsv = load_ratings("douban")
    monkeypatch.setenv("EMBEDLAB_DATA_DIR", str(tmp_path))
    from_mat = load_ratings("douban")
    assert from_mat.source_dir == tmp_path / "douban" and from_mat.user_ids == from_tsv.user_ids
    for split in ("train", "test"):
        assert _keys(from_mat, split) == _keys(from_tsv, split)


def test_ml100k_u1_statistics(ml100k: RatingDataset) -> None:
    assert ml100k.protocol == "u1"
    assert (len(ml100k.splits["train"]), len(ml100k.splits["test"])) == (80_000, 20_000)
    assert (ml100k.num_users, ml100k.num_items) == (943, 1_682)
    assert ml100k.splits["test"].users.unique().numel() == 459
    assert _keys(ml100k, "test") == _naive_file(ml100k.source_dir / "u1.test", "\t")


def test_unseen_ratings_against_a_naive_count(ml100k: RatingDataset) -> None:
    train = _naive_file(ml100k.source_dir / "u1.base", "\t")
    users, items = {u for u, _, _ in train}, {i for _, i, _ in train}
    naive = sum(u not in users or i not in items for u, i, _ in _keys(ml100k, "test"))
    assert ml100k.unseen_ratings("test") == naive > 0


def test_random90_split(ml100k: RatingDataset) -> None:
    a = load_ratings("ml-100k", protocol="random90", seed=3)
    assert (len(a.splits["train"]), len(a.splits["test"])) == (90_000, 10_000)
    assert sorted(_keys(a, "train") + _keys(a, "test")) == sorted(
        _keys(ml100k, "train") + _keys(ml100k, "test")
    )  # u1.base + u1.test == u.data
    b = load_ratings("ml-100k", protocol="random90", seed=3)
    c = load_ratings("ml-100k", protocol="random90", seed=4)
    assert torch.equal(a.splits["test"].users, b.splits["test"].users)
    assert torch.equal(a.splits["test"].items, b.splits["test"].items)
    assert not torch.equal(a.splits["test"].items, c.splits["test"].items)


def test_valid_fraction(ml100k: RatingDataset) -> None:
    ds = load_ratings("ml-100k", valid_fraction=0.1, seed=1)
    assert list(ds.splits) == ["train", "valid", "test"]
    assert (len(ds.splits["train"]), len(ds.splits["valid"])) == (72_000, 8_000)
    assert sorted(_keys(ds, "train") + _keys(ds, "valid")) == _keys(ml100k, "train")
    assert _keys(ds, "test") == _keys(ml100k, "test")
    again = load_ratings("ml-100k", valid_fraction=0.1, seed=1)
    assert torch.equal(ds.splits["valid"].items, again.splits["valid"].items)


def test_sparse_users_against_a_naive_count(ml100k: RatingDataset) -> None:
    limit = 40
    train = _naive_file(ml100k.source_dir / "u1.base", "\t")
    counts = Counter(u for u, _, _ in train)
    kept = {u for u, n in counts.items() if n < limit}
    ds = load_ratings("ml-100k", sparse_users=limit, valid_fraction=0.2)
    assert set(ds.user_ids) == kept
    per_user = Counter(u for s in ("train", "valid") for u, _, _ in _keys(ds, s))
    assert all(n < limit for n in per_user.values()) and set(per_user) == kept
    test = _naive_file(ml100k.source_dir / "u1.test", "\t")
    assert _keys(ds, "test") == [t for t in test if t[0] in kept]
    items = {i for s in ds.splits for _, i, _ in _keys(ds, s)}
    assert set(ds.item_ids) == items  # rows re-built over what is left


def test_sparse_users_with_nobody_left_is_a_user_error() -> None:
    shared("ml-1m")
    with pytest.raises(UserError, match="from 200 to 200"):
        load_ratings("ml-1m", sparse_users=200)


def test_unknown_protocol_lists_the_valid_ones() -> None:
    shared("ml-100k")
    with pytest.raises(UserError, match="valid: u1, random90"):
        load_ratings("ml-100k", protocol="u9")
    assert PROTOCOLS["ml-1m"][0] == "sse"


def test_side_dataset_is_not_a_ratings_dataset() -> None:
    shared("ml-1m-kg")
    with pytest.raises(UserError, match="kind 'side'"):
        load_ratings("ml-1m-kg")


# --- custom directories and malformed files ---------------------------------------------------------


def _custom(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.tsv").write_text(text)
    return folder


def test_custom_directory(tmp_path: Path) -> None:
    folder = _custom(
        tmp_path / "c", train="10\ta\t5\n9\tb\t1\n\n2\ta\t3.5\n", test="2\tc\t4\n11\ta\t2\n"
    )
    ds = load_ratings(str(folder))
    assert ds.protocol == "files" and ds.name == str(folder) and ds.source_dir == folder
    assert ds.user_ids == ["2", "9", "10", "11"]  # numeric order
    assert ds.item_ids == ["a", "b", "c"]
    assert ds.splits["train"].ratings.tolist() == [5.0, 1.0, 3.5]
    assert ds.splits["train"].users.tolist() == [2, 1, 0]
    assert ds.unseen_ratings("test") == 2
    with pytest.raises(UserError, match="valid: files"):
        load_ratings(str(folder), protocol="u1")


def test_custom_valid_file(tmp_path: Path) -> None:
    folder = _custom(tmp_path / "c", train="u\ti\t1\n", valid="u\tj\t2\n", test="v\ti\t3\n")
    ds = load_ratings(str(folder))
    assert list(ds.splits) == ["train", "valid", "test"] and ds.item_ids == ["i", "j"]
    with pytest.raises(UserError, match="valid_fraction"):
        load_ratings(str(folder), valid_fraction=0.1)


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("1\t1\t5\n1\t2\n", ":2:", "expected 3 tab-separated fields"),
        ("1\t1\t5\n\n1\t2\t4\t0\n", ":3:", "found 4"),
        ("1\t1\t5\n1\t2\tgood\n", ":2:", "'good' is not a number"),
        ("1\t1\t5\n2\t2\t5\n2\t3\t7\n", ":3:", "outside the scale"),
        ("1\t1\t0\n", ":1:", "outside the scale"),
        ("1\t1\tnan\n", ":1:", "outside the scale"),
        ("a\t\t5\n", ":1:", "non-empty ids"),
        ("u\tx\t5\n", "", ""),  # well-formed string ids
    ],
)
def test_malformed_line_names_file_and_line(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    folder = _custom(tmp_path / "bad", train=text, test="1\t1\t4\n")
    if not where:
        assert len(load_ratings(str(folder)).splits["train"]) == 1
        return
    with pytest.raises(DatasetError, match=re.escape(f"train.tsv{where}") + ".*" + what):
        load_ratings(str(folder))


def test_undecodable_and_empty_files(tmp_path: Path) -> None:
    folder = _custom(tmp_path / "bad", train="", test="1\t1\t4\n")
    with pytest.raises(DatasetError, match="train.tsv: file is empty"):
        load_ratings(str(folder))
    (folder / "train.tsv").write_bytes(b"1\t1\t4\n\xff\t1\t4\n")
    with pytest.raises(DatasetError, match="train.tsv:2: not valid UTF-8"):
        load_ratings(str(folder))


def test_missing_file_names_the_expected_ones(tmp_path: Path) -> None:
    folder = _custom(tmp_path / "half", train="1\t1\t4\n")
    with pytest.raises(DatasetError, match=r"test.tsv not found; .* needs train.tsv, test.tsv"):
        load_ratings(str(folder))


def test_vectorized_and_per_line_readers_agree(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = np.stack([rng.integers(0, 50, 300), rng.integers(-5, 80, 300), rng.integers(1, 6, 300)])
    path = tmp_path / "r.csv"
    path.write_text("".join(f"{u},{i},{r},{k}\n" for k, (u, i, r) in enumerate(rows.T)))
    fast = read_rating_file(path, delimiter=",", fields=4)
    slow = rating_files._read_lines(path, ",", 4)
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    with pytest.raises(DatasetError, match=r"r.csv: ids must be integers in \[0, 60\)"):
        read_rating_file(path, delimiter=",", fields=4, id_space=60)


def test_bad_arguments(tmp_path: Path) -> None:
    folder = _custom(tmp_path / "c", train="1\t1\t4\n", test="1\t1\t4\n")
    with pytest.raises(UserError, match="valid_fraction"):
        load_ratings(str(folder), valid_fraction=1.0)
    with pytest.raises(UserError, match="sparse_users"):
        load_ratings(str(folder), sparse_users=1)
    with pytest.raises(UserError, match="custom ratings dataset is a directory with train.tsv"):
        load_ratings(str(tmp_path / "nowhere"))


# --- registry, downloads, CLI -----------------------------------------------------------------------


def test_registry_entries_are_pinned_and_match_provenance() -> None:
    for name in RATING_SETS:
        spec = registry.REGISTRY[name]
        assert spec.kind == ("side" if name == "ml-1m-kg" else "ratings") and spec.files
        for remote in spec.files.values():
            assert remote.url.startswith("https://raw.githubusercontent.com/")
            assert re.search(r"/[0-9a-f]{40}/", remote.url), remote.url
    env = os.environ.get("EMBEDLAB_DATA_DIR")
    for name in RATING_SETS:
        provenance = Path(env or "/nonexistent") / name / "PROVENANCE.md"
        if not provenance.is_file():
            continue
        text = provenance.read_text()
        for local, remote in registry.REGISTRY[name].files.items():
            assert f"| {local} |" in text and remote.sha256 in text, (name, local)
            data = (provenance.parent / local).read_bytes()
            assert hashlib.sha256(data).hexdigest() == remote.sha256, (name, local)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()


def test_download_into_a_sub_folder(
    server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = server
    data = b"1,1,5\n"
    (root / "flat.csv").write_bytes(data)
    remote = RemoteFile(url=f"{base}/flat.csv", sha256=hashlib.sha256(data).hexdigest())
    spec = DatasetSpec(
        name="subdl",
        kind="ratings",
        description="t",
        citation="t",
        files={"split/train.csv": remote},
    )
    monkeypatch.setitem(registry.REGISTRY, "subdl", spec)
    monkeypatch.delenv("EMBEDLAB_DATA_DIR", raising=False)
    folder = resolve.resolve_dataset_dir("subdl")
    assert (folder / "split" / "train.csv").read_bytes() == data
    (root / "flat.csv").unlink()  # now resolved from the cache
    assert resolve.resolve_dataset_dir("subdl") == folder


def test_cli_info_prints_ratings_per_split(tmp_path: Path) -> None:
    folder = _custom(tmp_path / "c", train="1\ta\t5\n2\tb\t1\n", test="3\ta\t4\n")
    result = CliRunner().invoke(datasets_app, ["info", str(folder)])
    assert result.exit_code == 0, result.output
    assert "users: 3  items: 2" in result.output
    assert "train: 2 ratings by 2 users of 2 items" in result.output
    assert "(1 with a user or item unseen in training)" in result.output
    result = CliRunner().invoke(datasets_app, ["list"])
    assert result.exit_code == 0 and re.search(r"ml-1m-kg\s+side", result.output)
