"""A restricted unpickler for the Planetoid files (``ind.cora.*``), which exist only as pickles.

CONVENTIONS.md #6 keeps pickle out of anything a user saves; the Planetoid split (Yang, Cohen &
Salakhutdinov, ICML 2016) is published as Python-2 pickles only, so they are read here with an
unpickler that resolves a fixed allow-list of globals and refuses every other one (``os.system``,
``builtins.eval``, ...). The list is what ``shared/datasets/cora/PROVENANCE.md`` found in the
files with ``pickletools``; scipy's ``csr_matrix`` is not imported but replaced by
:class:`CsrState`, a plain holder of the pickled attributes, so scipy is not needed at run time.
"""

from __future__ import annotations

import collections
import importlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.errors import DatasetError


class CsrState:
    """What a pickled ``scipy.sparse.csr_matrix`` holds, without scipy: the unpickler creates the
    object empty and sets its ``__dict__`` (``_shape``, ``indptr``, ``indices``, ``data``, ...)."""

    def __init__(self) -> None:
        self.__dict__["_shape"] = (0, 0)

    def to_dense(self, source: Path) -> np.ndarray:
        """The matrix as a dense float32 ``(rows, cols)`` array.

        Raises:
            DatasetError: the state is not a consistent CSR matrix (named by ``source``).
        """
        state = self.__dict__
        try:
            rows, cols = (int(n) for n in state["_shape"])
            indptr = np.asarray(state["indptr"], dtype=np.int64)
            indices = np.asarray(state["indices"], dtype=np.int64)
            data = np.asarray(state["data"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{source}: not a CSR matrix ({exc})") from None
        bad = (
            indptr.shape != (rows + 1,)
            or indices.shape != data.shape
            or (indptr.size and (indptr[0] != 0 or indptr[-1] != indices.size))
            or bool(np.any(np.diff(indptr) < 0))
            or bool(indices.size and (indices.min() < 0 or indices.max() >= cols))
        )
        if bad:
            raise DatasetError(f"{source}: inconsistent CSR matrix of shape ({rows}, {cols})")
        dense = np.zeros((rows, cols), dtype=np.float32)
        row_of = np.repeat(np.arange(rows), np.diff(indptr))  # (nnz,)
        dense[row_of, indices] = data
        return dense


def _reconstruct() -> Any:
    """numpy's array reconstructor: ``numpy._core`` from numpy 2 on, ``numpy.core`` before."""
    try:
        module = importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy < 2
        module = importlib.import_module("numpy.core.multiarray")
    return module._reconstruct


# (module, name) as written in the pickle (Python 2 names) -> the object it stands for
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct(),
    ("scipy.sparse.csr", "csr_matrix"): CsrState,
    ("__builtin__", "list"): list,
    ("builtins", "list"): list,
    ("collections", "defaultdict"): collections.defaultdict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED_GLOBALS`; any other global raises ``UnpicklingError``."""

    def find_class(self, module: str, name: str) -> Any:
        """The allowed object for ``module.name``.

        Raises:
            pickle.UnpicklingError: any global outside :data:`ALLOWED_GLOBALS`.
        """
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return found


def restricted_load(path: Path) -> Any:
    """Unpickle ``path`` (Python-2 pickles: ``encoding="latin1"``) with
    :class:`RestrictedUnpickler`; numpy arrays of Python objects are refused as well.

    Raises:
        DatasetError: the file is missing, is not a pickle, references a global outside the
            allow-list, or holds an object array; the message names the file.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        value = RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{path}: not a safe Planetoid pickle ({exc})") from None
    arrays = [value] if isinstance(value, np.ndarray) else []
    if isinstance(value, CsrState):
        arrays = [v for v in value.__dict__.values() if isinstance(v, np.ndarray)]
    if any(a.dtype.hasobject for a in arrays):
        raise DatasetError(f"{path}: holds an array of Python objects")
    return value
