"""The SSE-MF tables' search spaces (configs/tune/sse-mf-*) enumerate exactly the configurations
behind the published docs/sse-mf-*.json, and each is a valid MF config."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from embedlab.config.io import build_typed_config
from embedlab.recsys.config import MfConfig
from embedlab.tune.summary import override

ROOT = Path(__file__).resolve().parents[2]


def _tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "sse_mf_tables", ROOT / "benchmarks/sse_mf_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parsed(overrides: list[str]) -> dict[str, Any]:
    return {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in overrides)}


def _key(config: dict[str, Any]) -> str:
    return json.dumps({k: float(v) if isinstance(v, int) else v for k, v in config.items()},
                      sort_keys=True)  # fmt: skip


@pytest.mark.parametrize("table", ["ml-1m", "douban"])
def test_spaces_enumerate_the_published_configurations(table: str) -> None:
    tables = _tables()
    published = json.loads((ROOT / f"docs/sse-mf-{table}.json").read_text())["methods"]
    assert list(published) == list(tables.METHODS[table])
    for method, slug in tables.METHODS[table].items():
        ours = [_key(c) for c in tables.configurations(table, slug)]
        theirs = [_key(_parsed(c["overrides"])) for c in published[method]["configs"]]
        assert len(set(ours)) == len(ours) == len(theirs)
        assert sorted(ours) == sorted(theirs), method
        selected = _parsed(published[method]["selected"]["overrides"])
        assert _key(selected) in ours  # the published selection is one of the space's configs
        for config in tables.configurations(table, slug)[:2]:
            build_typed_config(MfConfig, overrides=[override(k, v) for k, v in config.items()])
