from pathlib import Path

import pytest

from embedlab.datasets.kg import load_kg
from embedlab.datasets.triples import read_triples
from embedlab.errors import DatasetError, UserError


def test_reads_and_skips_blank_lines(tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    f.write_text("a\tr\tb\n\nb\tr\tc\r\n")
    assert read_triples(f) == [("a", "r", "b"), ("b", "r", "c")]


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"a\tr\tb\na\tr\n", r"t\.txt:2: expected 3"),
        (b"a\tr\tb\tc\n", r"t\.txt:1: expected 3"),
        (b"", r"t\.txt: file is empty"),
        (b"a\tr\tb\n\xff\xfe\tr\tb\n", r"t\.txt:2: not valid UTF-8"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path: Path, content: bytes, pattern: str) -> None:
    f = tmp_path / "t.txt"
    f.write_bytes(content)
    with pytest.raises(DatasetError, match=pattern):
        read_triples(f)


def test_missing_split_is_named(tiny_kg: Path) -> None:
    (tiny_kg / "valid.txt").unlink()
    with pytest.raises(DatasetError, match="valid.txt: file not found"):
        load_kg(str(tiny_kg))


def test_vocabulary_covers_all_splits(tiny_kg: Path) -> None:
    (tiny_kg / "test.txt").write_text("e0\tr0\tnew_entity\n")
    ds = load_kg(str(tiny_kg))
    assert "new_entity" in ds.entity_ids
    assert ds.unseen_entity_triples("test") == 1
    assert int(ds.all_triples().max()) < ds.num_entities


@pytest.mark.parametrize(
    ("name", "entities", "relations"), [("nations", 14, 55), ("umls", 135, 46)]
)
def test_shipped_datasets(name: str, entities: int, relations: int) -> None:
    ds = load_kg(name)
    assert ds.num_entities == entities and ds.num_relations == relations


def test_unknown_dataset_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown dataset 'nope'"):
        load_kg("nope")
