"""Knowledge-graph datasets as integer tensors with vocabularies over all splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from embedlab.datasets.registry import KG_SPLITS
from embedlab.datasets.resolve import resolve_dataset_dir
from embedlab.datasets.triples import read_triples

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class KgDataset:
    """A KG split into train/valid/test.

    Attributes:
        name: registry name or directory.
        entity_ids: entity labels; index = entity id. Covers all three splits (as LibKGE and the
            published tables do), so test triples with entities unseen in training are ranked.
        relation_ids: relation labels; index = relation id (reciprocals are not listed here).
        splits: ``"train"|"valid"|"test"`` -> ``(n, 3)`` int64 tensor of (head, relation, tail).
    """

    name: str
    entity_ids: list[str]
    relation_ids: list[str]
    splits: dict[str, torch.Tensor]

    @property
    def num_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def num_relations(self) -> int:
        return len(self.relation_ids)

    def unseen_entity_triples(self, split: str) -> int:
        """Number of ``split`` triples whose head or tail never occurs in training."""
        seen = torch.zeros(self.num_entities, dtype=torch.bool)
        train = self.splits["train"]
        seen[train[:, 0]] = True
        seen[train[:, 2]] = True
        triples = self.splits[split]
        return int((~seen[triples[:, 0]] | ~seen[triples[:, 2]]).sum())

    def all_triples(self) -> torch.Tensor:
        """``(n_train + n_valid + n_test, 3)``: every known triple (for filtered ranking)."""
        return torch.cat([self.splits[s] for s in SPLITS])


def load_kg(name_or_dir: str) -> KgDataset:
    """Resolve and read a KG dataset (see :func:`resolve_dataset_dir`).

    Raises:
        UserError / DatasetError: unknown name, missing split, malformed file (file and line named).
    """
    folder = resolve_dataset_dir(name_or_dir)
    labelled = {
        split: read_triples(Path(folder) / fname)
        for split, fname in zip(SPLITS, KG_SPLITS, strict=True)
    }
    entities: dict[str, int] = {}
    relations: dict[str, int] = {}
    for split in SPLITS:  # ids in order of first appearance, train first
        for h, r, t in labelled[split]:
            entities.setdefault(h, len(entities))
            relations.setdefault(r, len(relations))
            entities.setdefault(t, len(entities))
    tensors = {
        split: torch.tensor(
            [(entities[h], relations[r], entities[t]) for h, r, t in rows], dtype=torch.int64
        )
        for split, rows in labelled.items()
    }
    return KgDataset(
        name=name_or_dir,
        entity_ids=list(entities),
        relation_ids=list(relations),
        splits=tensors,
    )
