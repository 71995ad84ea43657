"""Writing ``.npz`` exports (``kge | mf | lm export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from embedlab.errors import UserError


def write_npz(out: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Save ``arrays`` to ``out`` (``.npz`` appended when missing, as ``np.savez`` does); returns
    the path written.

    Raises:
        UserError: the directory of ``out`` does not exist.
    """
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    if not out.parent.is_dir():
        raise UserError(f"{out}: directory {out.parent} does not exist")
    payload: dict[str, Any] = dict(arrays)  # numpy's stubs type **kwds like allow_pickle
    np.savez(out, **payload)
    return out
