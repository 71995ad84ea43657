"""Rating files: vectorized ``user, item, rating`` parsing with a per-line fallback that names
the bad line, and Monti et al.'s Douban MATLAB file (read by :mod:`embedlab.datasets.ratings`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from embedlab.datasets.lines import split_lines
from embedlab.errors import DatasetError

RATING_SCALE = (1.0, 5.0)
MONTI_MAT = "training_test_dataset.mat"

Raw = tuple[np.ndarray, np.ndarray, np.ndarray]  # raw user ids, raw item ids, ratings (R,) each


def read_rating_file(
    path: Path, *, delimiter: str, fields: int, id_space: int | None = None
) -> Raw:
    """Read ``user, item, rating[, ...]`` lines (exactly ``fields`` per line; blank lines skipped).

    Files with integer ids are parsed in one vectorized pass (``np.loadtxt``); anything else
    (string ids, a malformed line) goes through a per-line pass that also finds the first bad line.

    Returns:
        raw user ids ``(R,)``, raw item ids ``(R,)`` (int64 when every id in the file is an
        integer, else str) and ratings ``(R,)`` float32.

    Raises:
        DatasetError: empty file, wrong field count, empty id, non-numeric rating, rating outside
            :data:`RATING_SCALE`, or (with ``id_space``) an id outside ``[0, id_space)``; the
            message names the file and line.
    """
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: file is empty (no ratings)")
    columns = [("user", "i8"), ("item", "i8"), ("rating", "f8")]
    columns += [(f"extra{k}", "U64") for k in range(fields - 3)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # blank lines, empty input
            table = np.loadtxt(
                path, delimiter=delimiter, dtype=columns, comments=None, ndmin=1, encoding="utf-8"
            )
    except ValueError:  # wrong field count, non-integer id, non-numeric rating, not UTF-8
        table = None
    if table is None or not _in_scale(table["rating"]).all():
        raw = _read_lines(path, delimiter, fields)
    else:
        raw = table["user"], table["item"], table["rating"].astype(np.float32)
    if len(raw[2]) == 0:
        raise DatasetError(f"{path}: file is empty (no ratings)")
    if id_space is not None:
        _check_id_space(path, raw, id_space)
    return raw


def _in_scale(ratings: np.ndarray) -> np.ndarray:
    lo, hi = RATING_SCALE
    return (ratings >= lo) & (ratings <= hi)  # False for NaN


def _read_lines(path: Path, delimiter: str, fields: int) -> Raw:
    """The per-line pass: parse every line, raising on the first bad one (file:line)."""
    users: list[str] = []
    items: list[str] = []
    ratings: list[float] = []
    columns = "user, item, rating" + (", ..." if fields > 3 else "")
    for lineno, parts in split_lines(path, sep=delimiter, fields=fields, columns=columns):
        if not parts[0] or not parts[1]:
            raise DatasetError(f"{path}:{lineno}: empty user or item id (non-empty ids required)")
        try:
            rating = float(parts[2])
        except ValueError:
            raise DatasetError(f"{path}:{lineno}: rating {parts[2]!r} is not a number") from None
        if not _in_scale(np.asarray(rating, dtype=np.float32)):
            raise DatasetError(
                f"{path}:{lineno}: rating {parts[2]} outside the scale {list(RATING_SCALE)}"
            )
        users.append(parts[0])
        items.append(parts[1])
        ratings.append(rating)
    return _ids_array(users), _ids_array(items), np.asarray(ratings, dtype=np.float32)


def read_user_ratings(path: Path) -> list[tuple[int, str, float]]:
    """One user's ratings, ``item<TAB>rating`` per line (blank lines skipped), for a fold-in.

    Returns:
        ``(line number, raw item id, rating)`` in file order.

    Raises:
        DatasetError: a missing or empty file, a line without two tab-separated fields, an empty
            item, a rating that is not a number or outside :data:`RATING_SCALE` (file and line
            named).
    """
    if not path.is_file():
        raise DatasetError(f"{path}: ratings file not found")
    pairs: list[tuple[int, str, float]] = []
    for lineno, (item, text) in split_lines(path, sep="\t", fields=2, columns="item, rating"):
        try:
            rating = float(text)
        except ValueError:
            raise DatasetError(f"{path}:{lineno}: rating {text!r} is not a number") from None
        if not item:
            raise DatasetError(f"{path}:{lineno}: empty item id")
        if not _in_scale(np.asarray(rating)):
            raise DatasetError(
                f"{path}:{lineno}: rating {text} outside the scale {list(RATING_SCALE)}"
            )
        pairs.append((lineno, item, rating))
    if not pairs:
        raise DatasetError(f"{path}: no ratings (expected item<TAB>rating lines)")
    return pairs


def _ids_array(ids: list[str]) -> np.ndarray:
    """int64 when every id is an ASCII integer that fits, else str."""
    if all(s.isascii() and s.lstrip("-").isdigit() for s in ids):
        try:
            return np.asarray([int(s) for s in ids], dtype=np.int64)
        except OverflowError:
            pass
    return np.asarray(ids, dtype=str)


def _check_id_space(path: Path, raw: Raw, id_space: int) -> None:
    for ids in raw[:2]:
        bad = (ids < 0) | (ids >= id_space) if ids.dtype.kind == "i" else np.ones(1, dtype=bool)
        if bad.any():
            raise DatasetError(f"{path}: ids must be integers in [0, {id_space})")


def read_monti_mat(path: Path, key: str) -> np.ndarray:
    """One ``(3000, 3000)`` float64 matrix of Monti et al.'s Douban ``training_test_dataset.mat``
    (``M`` ratings, ``Otraining`` / ``Otest`` masks, ``W_users`` social graph), rows = users.

    Raises:
        DatasetError: ``h5py`` is not installed (the file is MATLAB v7.3, i.e. HDF5).
    """
    try:
        import h5py
    except ImportError:
        raise DatasetError(
            f"{path}: reading this MATLAB v7.3 file needs h5py (pip install 'embedlab[douban]' or pip install h5py); or put "
            "ratings_train.tsv, ratings_test.tsv (user<TAB>item<TAB>rating, 0-based) and "
            "user_graph_edges.tsv next to it"
        ) from None
    with h5py.File(path, "r") as f:
        return np.asarray(f[key]).T  # h5py gives MATLAB arrays transposed
