"""Row-wise sharded tables (TorchRec) against dense oracles, on 2 (and 1) gloo ranks on CPU.

One spawned job per world size runs every check of :mod:`tests.embeddings.sharded_ranks` (the
ranks import TorchRec once, a few seconds); each test reads its check's result from both ranks.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from embedlab.config.io import build_typed_config
from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.sharded import ShardedEmbeddingTable
from embedlab.errors import UserError
from embedlab.kge.config import build_config
from embedlab.lm.config import LmConfig
from embedlab.recsys.config import MfConfig
from tests.embeddings.sharded_ranks import CHECKS, launch

HAVE_TORCHREC = all(importlib.util.find_spec(m) for m in ("torchrec", "fbgemm_gpu"))
needs_torchrec = pytest.mark.skipif(
    not HAVE_TORCHREC, reason="torchrec / fbgemm-gpu-cpu not installed (`make torchrec`)"
)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    return launch(tmp_path_factory.mktemp("ranks2"), world=2, names=list(CHECKS))


@pytest.fixture(scope="module")
def one_rank(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    names = ["scores", "step_sgd", "step_adagrad", "state_dict"]
    return launch(tmp_path_factory.mktemp("ranks1"), world=1, names=names)


def _assert_ok(results: list[dict[str, str]], name: str) -> None:
    for rank, result in enumerate(results):
        assert result.get(name) == "ok", f"rank {rank}, check {name}:\n{result.get(name)}"


@needs_torchrec
@pytest.mark.parametrize("name", list(CHECKS))
def test_two_ranks_match_the_dense_oracle(two_ranks: list[dict[str, str]], name: str) -> None:
    """scores, SGD/Adagrad steps (own batch per rank, lr from a plateau scheduler), SSE,
    state_dict round trip with exact resume, replicated evaluation, DDP + sharded step."""
    _assert_ok(two_ranks, name)


@needs_torchrec
@pytest.mark.parametrize("name", ["scores", "step_sgd", "step_adagrad", "state_dict"])
def test_one_rank_matches_the_dense_oracle(one_rank: list[dict[str, str]], name: str) -> None:
    _assert_ok(one_rank, name)


def test_without_a_process_group_is_a_user_error() -> None:
    assert not torch.distributed.is_initialized()
    with pytest.raises(UserError, match="needs torch.distributed initialized"):
        ShardedEmbeddingTable(
            num_rows=10, dim=4, config=EmbeddingConfig(sharding="row_wise"), optimizer="sgd", lr=0.1
        )


@pytest.mark.parametrize(
    ("config", "optimizer", "message"),
    [
        ({}, "adam", "no fused Adam"),
        ({"regularize": {"kind": "lp", "weight": 0.1}}, "sgd", "weighted=true"),
    ],
)
def test_what_the_fused_kernels_cannot_do_is_a_user_error(
    config: dict, optimizer: str, message: str
) -> None:
    cfg = EmbeddingConfig.model_validate({"sharding": "row_wise", **config})
    with pytest.raises(UserError, match=message):
        ShardedEmbeddingTable(num_rows=10, dim=4, config=cfg, optimizer=optimizer, lr=0.1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["entity_embedding.sharding=row_wise", "entity_embedding.kind=kd"], "KD codes are N×D"),
        (["relation_embedding.sharding=row_wise"], "relation tables are small"),
        (["entity_embedding.sharding=columns"], "entity_embedding.sharding"),
    ],
)
def test_config_refuses_what_is_not_sharded(overrides: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_config(overrides=overrides)


@pytest.mark.parametrize(
    ("config", "table"), [(MfConfig, "item_embedding"), (LmConfig, "token_embedding")]
)
def test_mf_and_lm_refuse_sharding(config: type, table: str) -> None:
    with pytest.raises(UserError, match="sharding is implemented for KGE entity tables"):
        build_typed_config(config, overrides=[f"{table}.sharding=row_wise"])


def test_importing_embedlab_does_not_import_torchrec() -> None:
    code = (
        "import sys, embedlab, embedlab.kge.model, embedlab.embeddings.sharded\n"
        "assert 'torchrec' not in sys.modules and 'fbgemm_gpu' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=120)
