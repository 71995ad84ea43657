"""embedlab.embeddings.kd_distill.distill_stage: a fresh run distills and logs one ``distill``
event per epoch; a resumed run (``resuming``) trains nothing and reports the errors its trace
holds."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embedlab.embeddings import KdEmbedding
from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.kd_distill import distill_stage


class Events:
    def __init__(self, recorded: list[dict[str, Any]] | None = None) -> None:
        self.recorded = recorded or []  # what the trace file held before this process
        self.records: list[dict[str, Any]] = []

    def write(self, event: str, **fields: Any) -> None:
        self.records.append({"event": event, **fields})

    def read(self) -> list[dict[str, Any]]:
        return self.recorded + self.records


def model() -> nn.Module:
    torch.manual_seed(0)
    kd = {"K": 4, "D": 3, "code_dim": 5, "guidance": "pdg", "distill_epochs": 4}
    config = EmbeddingConfig.model_validate({"kind": "kd", "kd": kd})
    layer = KdEmbedding(num_rows=12, dim=5, config=config, teacher=torch.randn(12, 5))
    return nn.ModuleDict({"token_embedding": layer})


def test_fresh_stage_logs_each_epoch_and_returns_the_last_error() -> None:
    net, events = model(), Events()
    errors = distill_stage(net, seed=0, trace=events)
    logged = [e for e in events.records if e["event"] == "distill"]
    assert [e["epoch"] for e in logged] == [1, 2, 3, 4]
    assert errors == {"token_embedding": logged[-1]["relative_error"]}


def test_recorded_stage_trains_nothing_and_reads_the_last_event_per_table() -> None:
    recorded = [
        {"event": "start"},
        {"event": "distill", "table": "token_embedding", "epoch": 1, "relative_error": 0.9},
        {"event": "distill", "table": "token_embedding", "epoch": 2, "relative_error": 0.4},
        {"event": "distill", "table": "other", "epoch": 1, "relative_error": 0.7},
        {"event": "epoch", "epoch": 1, "loss": 3.0},
    ]
    net, events = model(), Events(recorded)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert distill_stage(net, seed=0, trace=events, resuming=True) == {
        "token_embedding": 0.4,
        "other": 0.7,
    }
    assert events.records == []
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    killed_before_distilling = Events([{"event": "start"}])
    assert distill_stage(net, seed=0, trace=killed_before_distilling, resuming=True) == {}
