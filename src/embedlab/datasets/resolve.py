"""Find a dataset's directory: package data -> $EMBEDLAB_DATA_DIR/NAME -> user cache -> download.

A path to an existing directory is a custom dataset and is used as it is.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pooch

from embedlab.datasets.registry import KG_SPLITS, REGISTRY, DatasetSpec
from embedlab.errors import DatasetError, UserError

DATA_DIR_ENV = "EMBEDLAB_DATA_DIR"
CACHE_DIR_ENV = "EMBEDLAB_CACHE_DIR"


def cache_dir() -> Path:
    """The user cache (``$EMBEDLAB_CACHE_DIR`` or the platform's cache dir ``embedlab``)."""
    override = os.environ.get(CACHE_DIR_ENV)
    return Path(override) if override else Path(pooch.os_cache("embedlab"))


def packaged_dir(name: str) -> Path:
    """Directory of a dataset shipped as package data."""
    return Path(str(resources.files("embedlab.datasets") / "data" / name))


def _expected_files(spec: DatasetSpec) -> list[str]:
    if spec.archive is not None:
        return list(spec.members)
    return list(spec.files) or list(KG_SPLITS)


def _complete(folder: Path, spec: DatasetSpec) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in _expected_files(spec))


def download(spec: DatasetSpec, target: Path, *, progress: bool = True) -> Path:
    """Download ``spec``'s files into ``target``, verifying each sha256 with pooch.

    Raises:
        DatasetError: on a checksum mismatch or a failed download (the file is not kept).
    """
    target.mkdir(parents=True, exist_ok=True)
    try:
        if spec.archive is not None:
            paths = pooch.retrieve(
                spec.archive.url,
                known_hash=f"sha256:{spec.archive.sha256}",
                path=target / ".archive",
                processor=pooch.Untar(extract_dir=str(target / ".archive" / "unpacked")),
                progressbar=progress,
            )
            by_member = {Path(p).as_posix(): Path(p) for p in paths}
            for local, member in spec.members.items():
                match = [p for key, p in by_member.items() if key.endswith("/" + member)]
                if not match:
                    raise DatasetError(f"archive {spec.archive.url} has no member {member!r}")
                (target / local).parent.mkdir(parents=True, exist_ok=True)  # sub-folder names
                (target / local).write_bytes(match[0].read_bytes())
        else:
            for local, remote in spec.files.items():
                pooch.retrieve(
                    remote.url,
                    known_hash=f"sha256:{remote.sha256}",
                    fname=local,
                    path=target,
                    progressbar=progress,
                )
    except ValueError as exc:  # pooch raises ValueError on a hash mismatch
        raise DatasetError(
            f"download of {spec.name!r} failed verification: {exc}. {_manual_hint(spec)}"
        ) from None
    except OSError as exc:  # requests' errors derive from OSError
        raise DatasetError(
            f"download of {spec.name!r} failed: {exc}. {_manual_hint(spec)}"
        ) from None
    return target


def _manual_hint(spec: DatasetSpec) -> str:
    return (
        f"To provide the files by hand, put {', '.join(_expected_files(spec))} in "
        f"${DATA_DIR_ENV}/{spec.name}/ or {cache_dir() / spec.name}/, or pass a directory "
        "with --dataset."
    )


def resolve_dataset_dir(name_or_dir: str) -> Path:
    """Return the directory holding a dataset's files.

    A registry name resolves (ARCHITECTURE.md) through package data -> ``$EMBEDLAB_DATA_DIR/NAME``
    -> user cache -> download with checksum. Anything else must be an existing directory (a
    custom dataset); ``./wn18rr`` names a directory even where ``wn18rr`` is a registry name.

    Raises:
        UserError: unknown name, or the files cannot be found or downloaded; the message says how
            to provide them.
    """
    spec = REGISTRY.get(name_or_dir)
    if spec is None and Path(name_or_dir).expanduser().is_dir():
        return Path(name_or_dir).expanduser()
    if spec is None:
        known = ", ".join(sorted(REGISTRY))
        raise UserError(
            f"unknown dataset {name_or_dir!r}: not a directory and not one of: {known}. "
            "A custom KG dataset is a directory with train.txt, valid.txt, test.txt "
            "(head<TAB>relation<TAB>tail); a custom ratings dataset is a directory with "
            "train.tsv, test.tsv and optionally valid.tsv (user<TAB>item<TAB>rating)."
        )
    if spec.packaged and _complete(packaged_dir(spec.name), spec):
        return packaged_dir(spec.name)
    env = os.environ.get(DATA_DIR_ENV)
    if env and _complete(Path(env) / spec.name, spec):
        return Path(env) / spec.name
    cached = cache_dir() / spec.name
    if spec.downloadable and _complete(cached, spec):
        return cached
    if spec.downloadable:
        return download(spec, cached)
    raise UserError(f"dataset {spec.name!r} not found. {_manual_hint(spec)}")
