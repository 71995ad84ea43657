"""The download path for real: a local HTTP server on 127.0.0.1 serving a tiny archive."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from embedlab.datasets import registry, resolve
from embedlab.datasets.kg import load_kg
from embedlab.datasets.registry import DatasetSpec, RemoteFile
from embedlab.errors import DatasetError, UserError


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()


def _tiny_archive(path: Path) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for split in ("train", "valid", "test"):
            data = b"a\tr\tb\nb\tr\tc\n"
            info = tarfile.TarInfo(f"TINY/{split}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def _spec(url: str, digest: str) -> DatasetSpec:
    return DatasetSpec(
        name="tinydl",
        kind="kg",
        description="test",
        citation="test",
        archive=RemoteFile(url=url, sha256=digest),
        members={f"{s}.txt": f"TINY/{s}.txt" for s in ("train", "valid", "test")},
    )


def test_download_archive_with_checksum(
    server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = server
    digest = _tiny_archive(root / "tiny.tar.gz")
    monkeypatch.setitem(registry.REGISTRY, "tinydl", _spec(f"{base}/tiny.tar.gz", digest))
    monkeypatch.delenv("EMBEDLAB_DATA_DIR", raising=False)
    ds = load_kg("tinydl")
    assert ds.num_entities == 3 and len(ds.splits["train"]) == 2
    assert (resolve.cache_dir() / "tinydl" / "train.txt").is_file()
    # second resolution uses the cache: the server may go away
    (root / "tiny.tar.gz").unlink()
    assert resolve.resolve_dataset_dir("tinydl") == resolve.cache_dir() / "tinydl"


def test_checksum_mismatch_is_rejected(
    server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = server
    _tiny_archive(root / "tiny.tar.gz")
    monkeypatch.setitem(registry.REGISTRY, "tinydl", _spec(f"{base}/tiny.tar.gz", "0" * 64))
    monkeypatch.delenv("EMBEDLAB_DATA_DIR", raising=False)
    with pytest.raises(DatasetError, match="failed verification"):
        load_kg("tinydl")
    assert not (resolve.cache_dir() / "tinydl" / "train.txt").exists()


def test_per_file_download(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    base, root = server
    files = {}
    for split in ("train", "valid", "test"):
        data = b"x\tr\ty\n"
        (root / f"{split}.txt").write_bytes(data)
        files[f"{split}.txt"] = RemoteFile(
            url=f"{base}/{split}.txt", sha256=hashlib.sha256(data).hexdigest()
        )
    spec = DatasetSpec(name="tinyfiles", kind="kg", description="t", citation="t", files=files)
    monkeypatch.setitem(registry.REGISTRY, "tinyfiles", spec)
    assert load_kg("tinyfiles").num_entities == 2


def test_unreachable_server_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec("http://127.0.0.1:9/none.tar.gz", "0" * 64)
    monkeypatch.setitem(registry.REGISTRY, "tinydl", spec)
    monkeypatch.delenv("EMBEDLAB_DATA_DIR", raising=False)
    with pytest.raises(UserError, match="download of 'tinydl' failed"):
        load_kg("tinydl")


def test_data_dir_env_takes_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import write_kg

    write_kg(tmp_path / "wn18rr")
    monkeypatch.setenv("EMBEDLAB_DATA_DIR", str(tmp_path))
    assert resolve.resolve_dataset_dir("wn18rr") == tmp_path / "wn18rr"


def test_registry_urls_are_pinned_with_sha256() -> None:
    for spec in registry.REGISTRY.values():
        for remote in spec.files.values():
            assert remote.url.startswith("https://") and len(remote.sha256) == 64
        assert spec.packaged or spec.downloadable
