"""Explicit-feedback rating datasets (MovieLens, Douban) for matrix-factorization recommenders.

Each registered dataset has named split *protocols* (the first is the default):

- ``ml-1m``: ``sse``, the SSE paper's split (Wu et al., NeurIPS 2019; ``sse_mf_split/*.csv``,
  ``user,movie,rating`` without header), 1,496 users with 200 train ratings each.
- ``ml-100k``: ``u1`` (GroupLens' ``u1.base`` / ``u1.test``), ``random90`` (a seeded 90/10 random
  split of ``u.data``).
- ``douban``: ``monti``, the fixed train/test mask of Monti et al. (NIPS 2017), 3000 x 3000 with
  0-based ids, from ``ratings_train.tsv`` / ``ratings_test.tsv`` or, where only the published
  ``training_test_dataset.mat`` is present, from that file (needs ``h5py``).

A directory holding ``train.tsv`` and ``test.tsv`` (optional ``valid.tsv``), ``user<TAB>item<TAB>
rating`` per line, is a custom ratings dataset (protocol ``files``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from embedlab.datasets.rating_files import (
    MONTI_MAT,
    RATING_SCALE,
    Raw,
    read_monti_mat,
    read_rating_file,
)
from embedlab.datasets.registry import REGISTRY
from embedlab.datasets.resolve import resolve_dataset_dir
from embedlab.errors import DatasetError, UserError

CUSTOM_FILES = ("train.tsv", "test.tsv")


@dataclass(frozen=True)
class _Protocol:
    train: str  # file, relative to the dataset directory
    test: str | None  # None: ``test_fraction`` of ``train`` is drawn at random
    delimiter: str
    fields: int  # user, item, rating (, timestamp)
    test_fraction: float = 0.0
    id_space: int | None = None  # ids are 0-based matrix indices in [0, id_space)


_PROTOCOLS: dict[str, dict[str, _Protocol]] = {
    "ml-1m": {
        "sse": _Protocol(
            "sse_mf_split/ml1m_train_ratings.csv", "sse_mf_split/ml1m_test_ratings.csv", ",", 3
        )
    },
    "ml-100k": {
        "u1": _Protocol("u1.base", "u1.test", "\t", 4),
        "random90": _Protocol("u.data", None, "\t", 4, test_fraction=0.1),
    },
    "douban": {"monti": _Protocol("ratings_train.tsv", "ratings_test.tsv", "\t", 3, id_space=3000)},
}

PROTOCOLS: dict[str, tuple[str, ...]] = {name: tuple(p) for name, p in _PROTOCOLS.items()}
"""Registered ratings dataset -> its split protocols, the default first."""


@dataclass(frozen=True)
class RatingSplit:
    """One split: rating ``k`` is ``ratings[k]`` by row ``users[k]`` for row ``items[k]``.

    Attributes:
        users: ``(R,)`` int64 user rows.
        items: ``(R,)`` int64 item rows.
        ratings: ``(R,)`` float32 ratings.
    """

    users: torch.Tensor
    items: torch.Tensor
    ratings: torch.Tensor

    def __len__(self) -> int:
        return int(self.ratings.numel())


@dataclass(frozen=True)
class RatingDataset:
    """A rating matrix split into ``train``, ``test`` (and ``valid``).

    Attributes:
        name: registry name, or the directory of a custom dataset.
        num_users, num_items: rows of the user and item tables.
        splits: ``"train"|"valid"|"test"`` -> :class:`RatingSplit`.
        user_ids, item_ids: raw id of each row. The rows cover every split (as for KGs), sorted by
            raw id (numerically when all ids are integers); Douban's ``monti`` protocol keeps the
            full 3000 x 3000 index space.
        rating_scale: ``(lowest, highest)`` rating.
        source_dir: the directory the files were read from.
        protocol: the split protocol used (``files`` for a custom directory).
    """

    name: str
    num_users: int
    num_items: int
    splits: dict[str, RatingSplit]
    user_ids: list[str]
    item_ids: list[str]
    rating_scale: tuple[float, float]
    source_dir: Path
    protocol: str

    def unseen_ratings(self, split: str = "test") -> int:
        """Number of ``split`` ratings whose user or item has no rating in ``train``."""
        train = self.splits["train"]
        seen_u = torch.zeros(self.num_users, dtype=torch.bool)
        seen_i = torch.zeros(self.num_items, dtype=torch.bool)
        seen_u[train.users] = True
        seen_i[train.items] = True
        part = self.splits[split]
        return int((~seen_u[part.users] | ~seen_i[part.items]).sum())


def load_ratings(
    name_or_dir: str,
    *,
    protocol: str | None = None,
    valid_fraction: float = 0.0,
    sparse_users: int | None = None,
    seed: int = 0,
) -> RatingDataset:
    """Resolve (:func:`resolve_dataset_dir`) and read a ratings dataset.

    Args:
        name_or_dir: ``ml-1m``, ``ml-100k``, ``douban`` or a directory with ``train.tsv`` and
            ``test.tsv`` (optional ``valid.tsv``).
        protocol: split protocol (see :data:`PROTOCOLS`); ``None`` for the dataset's default.
        valid_fraction: hold out this fraction of the train ratings (uniformly, seeded) as
            ``valid``; in ``[0, 1)``.
        sparse_users: keep only users with fewer than this many train ratings, in every split
            (the SSE paper's sparse setting); counted before the ``valid`` hold-out; the rows are
            re-built over what is left.
        seed: seeds the random splits (``random90`` and ``valid_fraction``).

    Raises:
        UserError: unknown dataset or protocol, bad arguments, nothing left after filtering.
        DatasetError: missing file (the expected files named) or malformed line (file:line).
    """
    if not 0.0 <= valid_fraction < 1.0:
        raise UserError(f"valid_fraction must lie in [0, 1), got {valid_fraction}")
    if sparse_users is not None and sparse_users < 2:
        raise UserError(f"sparse_users must be at least 2, got {sparse_users}")
    folder = Path(resolve_dataset_dir(name_or_dir))
    spec = REGISTRY.get(name_or_dir)
    if spec is not None and spec.kind != "ratings":
        raise UserError(f"dataset {name_or_dir!r} is of kind {spec.kind!r}, not ratings")
    valid_protocols = PROTOCOLS[name_or_dir] if spec is not None else ("files",)
    chosen = protocol or valid_protocols[0]
    if chosen not in valid_protocols:
        raise UserError(
            f"unknown protocol {chosen!r} for ratings dataset {name_or_dir!r}; "
            f"valid: {', '.join(valid_protocols)}"
        )
    if spec is None:
        raw, id_space = _read_custom(folder), None
    else:
        proto = _PROTOCOLS[name_or_dir][chosen]
        raw, id_space = _read_protocol(folder, proto, name_or_dir, chosen, seed), proto.id_space
    if "valid" in raw and valid_fraction > 0:
        raise UserError(f"{folder / 'valid.tsv'} exists: leave valid_fraction at 0")
    if sparse_users is not None:
        raw, id_space = _keep_sparse_users(raw, sparse_users), None
    if valid_fraction > 0:
        raw["train"], raw["valid"] = _hold_out(raw["train"], valid_fraction, [seed, 1])
    for split, (_, _, values) in raw.items():
        if len(values) == 0:
            raise UserError(
                f"dataset {name_or_dir!r}: the {split} split is empty after filtering "
                f"(valid_fraction={valid_fraction}, sparse_users={sparse_users})"
            )
    return _index(raw, name_or_dir, folder, chosen, id_space)


def _read_custom(folder: Path) -> dict[str, Raw]:
    _require(folder, CUSTOM_FILES, "a custom ratings dataset (user<TAB>item<TAB>rating lines)")
    names = {"train": "train.tsv", "test": "test.tsv"}
    if (folder / "valid.tsv").is_file():
        names["valid"] = "valid.tsv"
    return {s: read_rating_file(folder / f, delimiter="\t", fields=3) for s, f in names.items()}


def _read_protocol(
    folder: Path, proto: _Protocol, name: str, protocol: str, seed: int
) -> dict[str, Raw]:
    files = (proto.train,) if proto.test is None else (proto.train, proto.test)
    exported = all((folder / f).is_file() for f in files)
    if name == "douban" and not exported and (folder / MONTI_MAT).is_file():
        return _read_monti_mat(folder / MONTI_MAT)  # the published file; the TSVs are exports
    _require(folder, files, f"ratings dataset {name!r} (protocol {protocol!r})")
    raw = {
        split: read_rating_file(
            folder / fname, delimiter=proto.delimiter, fields=proto.fields, id_space=proto.id_space
        )
        for split, fname in zip(("train", "test"), files, strict=False)
    }
    if proto.test is None:
        raw["train"], raw["test"] = _hold_out(raw["train"], proto.test_fraction, [seed, 0])
    return raw


def _require(folder: Path, files: tuple[str, ...], what: str) -> None:
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DatasetError(
            f"{folder}: {', '.join(missing)} not found; {what} needs {', '.join(files)}"
        )


def _read_monti_mat(path: Path) -> dict[str, Raw]:
    ratings = read_monti_mat(path, "M")
    out = {}
    for split, key in (("train", "Otraining"), ("test", "Otest")):
        users, items = np.nonzero(read_monti_mat(path, key))
        out[split] = (users.astype(np.int64), items.astype(np.int64), ratings[users, items])
    return {s: (u, i, r.astype(np.float32)) for s, (u, i, r) in out.items()}


def _hold_out(raw: Raw, fraction: float, seed: list[int]) -> tuple[Raw, Raw]:
    """Split ``raw`` into (kept, held out); ``round(fraction * R)`` ratings held out, file order
    kept in both parts."""
    n = len(raw[2])
    held = np.zeros(n, dtype=bool)
    held[np.random.default_rng(seed).permutation(n)[: round(fraction * n)]] = True
    kept = (raw[0][~held], raw[1][~held], raw[2][~held])
    return kept, (raw[0][held], raw[1][held], raw[2][held])


def _same_id_dtype(raw: dict[str, Raw]) -> dict[str, Raw]:
    """Give every split's id columns one dtype (str where any split has non-integer ids)."""
    if all(r[c].dtype.kind == "i" for r in raw.values() for c in (0, 1)):
        return raw
    return {s: (u.astype(str), i.astype(str), r) for s, (u, i, r) in raw.items()}


def _keep_sparse_users(raw: dict[str, Raw], limit: int) -> dict[str, Raw]:
    raw = _same_id_dtype(raw)
    ids, counts = np.unique(raw["train"][0], return_counts=True)
    keep = ids[counts < limit]
    if keep.size == 0:
        raise UserError(
            f"sparse_users={limit}: no user has fewer than {limit} train ratings "
            f"(train ratings per user range from {counts.min()} to {counts.max()})"
        )
    out = {}
    for split, (users, items, ratings) in raw.items():
        mask = np.isin(users, keep)
        out[split] = (users[mask], items[mask], ratings[mask])
    return out


def _vocab(columns: list[np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """Rows over the raw ids of all ``columns``, sorted by id (numerically when all are integers).

    Returns:
        the raw id of each row, and each column mapped to rows (int64, same shapes).
    """
    values = np.concatenate(columns)
    if values.dtype.kind == "i" and values.size and np.ptp(values) <= 4 * values.size + 1_000_000:
        offset = values - values.min()  # dense integer ids: O(n) instead of a sort
        present = np.zeros(int(offset.max()) + 1, dtype=bool)
        present[offset] = True
        uniq = np.flatnonzero(present) + values.min()
        inverse = (np.cumsum(present) - 1)[offset]
    else:
        uniq, inverse = np.unique(values, return_inverse=True)
    if values.dtype.kind != "i":
        try:
            order = np.argsort(uniq.astype(np.int64), kind="stable")
        except (ValueError, OverflowError):
            order = np.arange(uniq.size)
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        uniq, inverse = uniq[order], rank[inverse.reshape(-1)]
    labels = [str(v) for v in uniq.tolist()]
    cuts = np.cumsum([c.size for c in columns])[:-1]
    return labels, np.split(inverse.reshape(-1).astype(np.int64), cuts)


def _index(
    raw: dict[str, Raw], name: str, folder: Path, protocol: str, id_space: int | None
) -> RatingDataset:
    raw = _same_id_dtype(raw)
    names = list(raw)
    if id_space is not None:  # 0-based matrix indices: rows are the ids themselves
        user_ids = item_ids = [str(i) for i in range(id_space)]
        user_rows = [raw[s][0] for s in names]
        item_rows = [raw[s][1] for s in names]
    else:
        user_ids, user_rows = _vocab([raw[s][0] for s in names])
        item_ids, item_rows = _vocab([raw[s][1] for s in names])
    splits = {
        s: RatingSplit(
            users=torch.from_numpy(np.ascontiguousarray(u, dtype=np.int64)),
            items=torch.from_numpy(np.ascontiguousarray(i, dtype=np.int64)),
            ratings=torch.from_numpy(np.ascontiguousarray(raw[s][2], dtype=np.float32)),
        )
        for s, u, i in zip(names, user_rows, item_rows, strict=True)
    }
    order = [s for s in ("train", "valid", "test") if s in splits]
    return RatingDataset(
        name=name,
        num_users=len(user_ids),
        num_items=len(item_ids),
        splits={s: splits[s] for s in order},
        user_ids=list(user_ids),
        item_ids=list(item_ids),
        rating_scale=RATING_SCALE,
        source_dir=folder,
        protocol=protocol,
    )
