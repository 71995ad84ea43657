"""Row labels of a dataset table (entities, relations, users, items, words) and their inverse:
user input given as a label (``str``) or a row id (``int``) resolved to a row id, with errors that
name the label and the dataset."""

from __future__ import annotations

import difflib
import operator
from collections.abc import Iterable, Sequence
from typing import SupportsIndex

from embedlab.errors import UserError


class Labels:
    """The labels of one table's rows; row ``i`` is labelled ``labels[i]``.

    Args:
        labels: one label per row, unique.
        kind: what a row is, for messages (``"entity"``, ``"relation"``, ``"item"``).
        dataset: the dataset's name or directory, for messages.
    """

    def __init__(self, *, labels: Sequence[str], kind: str, dataset: str) -> None:
        self.labels = list(labels)
        self.kind, self.dataset = kind, dataset
        self._ids = {label: i for i, label in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, row: int) -> str:
        return self.labels[row]

    def id(self, key: object) -> int:
        """The row id of ``key``: a label (``str``), or a row id (any integer, numpy's too).

        Raises:
            UserError: an unknown label (naming it, the dataset and up to three close labels),
                an id outside ``[0, len)``, or a key that is neither (``bool`` included).
        """
        if isinstance(key, str):
            row = self._ids.get(key)
            if row is None:
                close = difflib.get_close_matches(key, self.labels, n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise UserError(
                    f"unknown {self.kind} {key!r} in dataset {self.dataset} "
                    f"({len(self)} {self.kind} labels){hint}"
                )
            return row
        try:
            if isinstance(key, bool) or not isinstance(key, SupportsIndex):
                raise TypeError
            row = operator.index(key)  # a float tensor has __index__, which raises TypeError
        except TypeError:
            raise UserError(
                f"{self.kind} {key!r}: give a label (str) or a row id (int), "
                f"not {type(key).__name__}"
            ) from None
        if not 0 <= row < len(self):
            raise UserError(
                f"{self.kind} id {row} is out of range: dataset {self.dataset} has "
                f"{len(self)} {self.kind} rows (ids 0..{len(self) - 1})"
            )
        return row

    def ids(self, keys: object) -> list[int]:
        """Row ids of one key or a sequence of keys (see :meth:`id`)."""
        return [self.id(k) for k in as_list(keys)]


def as_list(keys: object) -> list[object]:
    """``keys`` as a list: a ``str`` or a scalar is one key; a list, tuple, numpy array or tensor
    (1-D) is a sequence of keys."""
    if isinstance(keys, str) or not isinstance(keys, Iterable):
        return [keys]
    shape = getattr(keys, "shape", None)
    if shape is not None and len(shape) == 0:  # numpy / torch scalar
        return [keys]
    return list(keys)
