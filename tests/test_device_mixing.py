"""Device safety, part 2: one training step and one validation of every task under
:class:`~tests.device_tracker.DeviceTracker`, which simulates a second device on the CPU and
records host/device mixing (the task cases also run on real CUDA where present, marked
``device``). Part 1 (a static scan of factory calls) is ``tests/test_device_scan.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import write_kg, write_ratings
from tests.device_tracker import DeviceTracker, one_step, summary


def test_tracker_flags_mixing() -> None:
    device = torch.device("cpu")  # the run's device
    weight = torch.randn(5, 3)
    with DeviceTracker() as tracker:
        tracker.place(weight)
        data = torch.arange(5).to(device)  # moved: device
        weight[data] + weight[torch.arange(2, device=data.device)].sum()  # fine
        weight.sum() + torch.tensor(1.0)  # a host 0-dim scalar: CUDA accepts it
        weight.cpu() @ torch.ones(3)  # explicitly on the host: fine
        weight[torch.arange(2)]  # 1: host index into a device tensor
        torch.searchsorted(torch.arange(5), data)  # 2: host meets device
        torch.rand(3, device=data.device, generator=torch.Generator())  # 3: CPU generator
    assert [p.split(": ")[1] for p in tracker.problems] == [
        "host index or value into a device tensor",
        "host and device tensors meet",
        "a cpu generator draws on the device",
    ], tracker.problems


@pytest.fixture(
    params=[
        "cpu",
        pytest.param(
            "cuda",
            marks=[
                pytest.mark.device,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
            ],
        ),
    ]
)
def device(request: pytest.FixtureRequest) -> torch.device:
    """The run's device: the CPU (device placement simulated) or, where present, real CUDA."""
    return torch.device(request.param)


KGE_CASES = {
    "1vsAll-sce-complex": ["train.type=1vsAll", "loss.name=sce"],
    "1vsAll-sce_bc-distmult": ["train.type=1vsAll", "loss.name=sce_bc", "model.name=distmult"],
    "1vsAll-ns_freq-tucker": ["train.type=1vsAll", "loss.name=ns_freq", "model.name=tucker"],
    "KvsAll-sce_ls": ["train.type=KvsAll", "loss.name=sce_ls", "loss.label_smoothing=0.1"],
    "KvsAll-ns_freq": ["train.type=KvsAll", "loss.name=ns_freq"],
    "NS-uniform-filtered": [
        "train.type=negative_sampling", "loss.name=ns", "train.negatives.filter=true",
        "train.negatives.tail=20", "train.negatives.head=20",
    ],
    "NS-freq-sampled-filtered": [
        "train.type=negative_sampling", "loss.name=ns_freq", "loss.freq_reading=sampled",
        "train.negatives.filter=true", "train.negatives.tail=20", "train.negatives.head=20",
    ],
    "NS-freq-weighted": [
        "train.type=negative_sampling", "loss.name=ns_freq", "loss.freq_reading=weighted",
    ],
    "NS-sans-rotate": ["train.type=negative_sampling", "loss.name=sans", "model.name=rotate"],
    "sse-graph-dropout": [
        "entity_embedding.sse.kind=graph", "entity_embedding.sse.p=0.5",
        "relation_embedding.sse.kind=se", "relation_embedding.sse.p=0.5",
        "entity_embedding.dropout=0.2", "entity_embedding.regularize.kind=n3",
        "entity_embedding.regularize.weight=0.01",
    ],
    "kd-codes": [
        "entity_embedding.kind=kd", "entity_embedding.kd.relaxation=gumbel",
        "entity_embedding.kd.guidance=online", "entity_embedding.kd.entropy_weight=0.01",
    ],
}  # fmt: skip


@pytest.mark.parametrize("over", KGE_CASES.values(), ids=KGE_CASES.keys())
def test_kge_step_and_validation_stay_on_the_device(
    tmp_path: Path, over: list[str], device: torch.device
) -> None:
    from embedlab.datasets.kg import load_kg
    from embedlab.evaluation.kge_eval import known_answers
    from embedlab.kge.run import build_model
    from embedlab.kge.training_types import build_task
    from tests.conftest import fast_config

    config = fast_config(
        str(write_kg(tmp_path / "kg", entities=30, n=200)), **dict(o.split("=", 1) for o in over)
    )
    dataset = load_kg(config.dataset)
    torch.manual_seed(0)
    model = build_model(config, dataset).to(device)
    with DeviceTracker() as tracker:
        tracker.place_module(model)
        known = known_answers(dataset.all_triples().to(device), dataset.num_relations)
        task = build_task(model=model, dataset=dataset, known=known, config=config)
        one_step(task, tracker)
    assert not tracker.problems, summary(tracker)


def _ring(n: int) -> Any:
    from embedlab.embeddings.graph import RowGraph

    rows = torch.arange(n)
    return RowGraph.from_edges(num_rows=n, src=rows, dst=(rows + 1) % n)


MF_CASES = {
    "sgd-sse-graph-dropout-lp3": [
        "user_embedding.sse.kind=graph", "user_embedding.sse.p=0.5", "item_embedding.sse.kind=se",
        "item_embedding.sse.p=0.5", "item_embedding.dropout=0.2",
        "user_embedding.regularize.kind=lp", "user_embedding.regularize.p=3",
        "user_embedding.regularize.weight=0.01", "item_embedding.regularize.kind=n3",
        "item_embedding.regularize.weight=0.01", "item_embedding.regularize.weighted=false",
    ],
    "als-l2": [
        "train.method=als", "user_embedding.regularize.kind=lp",
        "user_embedding.regularize.weight=0.01",
    ],
    "grals": ["train.method=grals", "train.laplacian.user=0.5", "train.laplacian.item=0.5"],
}  # fmt: skip


@pytest.mark.parametrize("over", MF_CASES.values(), ids=MF_CASES.keys())
def test_mf_epoch_and_validation_stay_on_the_device(
    tmp_path: Path, over: list[str], device: torch.device
) -> None:
    from embedlab.config.io import build_typed_config
    from embedlab.recsys.config import MfConfig
    from embedlab.recsys.model import MatrixFactorization
    from embedlab.recsys.run import load_mf_dataset
    from embedlab.recsys.task import MfTask

    base = [f"dataset={write_ratings(tmp_path / 'ratings')}", "model.dim=4", "train.batch_size=64"]
    config = build_typed_config(MfConfig, overrides=[*base, "data.valid_fraction=0.1", *over])
    dataset = load_mf_dataset(config)
    torch.manual_seed(0)
    users, items = dataset.num_users, dataset.num_items
    sse_graph = config.user_embedding.sse.kind == "graph"  # the run's graphs need a named dataset
    model = MatrixFactorization(
        num_users=users,
        num_items=items,
        config=config,
        user_graph=_ring(users) if sse_graph else None,
    )
    model.mean.fill_(float(dataset.splits["train"].ratings.double().mean()))
    model.to(device)
    lap = config.train.laplacian
    with DeviceTracker() as tracker:
        tracker.place_module(model)
        laplacians = tuple(
            (_ring(n).laplacian().to(device), w) if w else None
            for n, w in ((users, lap.user), (items, lap.item))
        )
        task = MfTask(model=model, dataset=dataset, config=config, laplacians=laplacians)
        one_step(task, tracker)
    assert not tracker.problems, summary(tracker)


LM_CASES = {
    "lookup-sse-untied": [
        "token_embedding.sse.kind=se", "token_embedding.sse.p=0.3", "output_embedding.sse.kind=se",
        "output_embedding.sse.p=0.3", "token_embedding.dropout=0.1",
        "token_embedding.regularize.kind=lp", "token_embedding.regularize.weight=0.01",
    ],
    "kd-tied": ["model.tie_weights=true", "token_embedding.kind=kd", "model.layers=2"],
}  # fmt: skip


@pytest.mark.parametrize("over", LM_CASES.values(), ids=LM_CASES.keys())
def test_lm_window_and_validation_stay_on_the_device(
    tmp_path: Path, over: list[str], device: torch.device
) -> None:
    from embedlab.config.io import build_typed_config
    from embedlab.datasets.tokens import load_corpus
    from embedlab.lm.config import LmConfig
    from embedlab.lm.load import build_lm_model
    from embedlab.lm.task import LmTask
    from tests.lm.test_lm_run import FAST, write_tiny_corpus

    data = write_tiny_corpus(tmp_path / "corpus", lines=40)
    config = build_typed_config(LmConfig, overrides=[f"dataset={data}", *FAST, *over])
    corpus = load_corpus(config.dataset)
    torch.manual_seed(0)
    model = build_lm_model(config, corpus, with_teachers=False).to(device)
    with DeviceTracker() as tracker:
        tracker.place_module(model)
        one_step(LmTask(model=model, corpus=corpus, config=config), tracker)
    assert not tracker.problems, summary(tracker)


def test_analysis_and_export_follow_their_inputs(device: torch.device) -> None:
    """KL of splits, PCA, graphs from device labels, KD export and bit packing."""
    from embedlab.config.io import build_typed_config
    from embedlab.embeddings.config import EmbeddingConfig
    from embedlab.embeddings.graph import RowGraph
    from embedlab.embeddings.kd import KdEmbedding
    from embedlab.embeddings.kd_compact import export_kd, pack_codes, unpack_codes
    from embedlab.losses.kl import kl_train_test
    from embedlab.recsys.projection import pca_3d

    g = torch.Generator().manual_seed(0)
    train, test = (torch.randint(0, 8, (n, 3), generator=g) for n in (60, 20))
    table = torch.randn(10, 5, generator=g)
    labels = torch.tensor([0, 0, 1, -1, 1, 2, 2, 2, -1, 0])
    config = build_typed_config(EmbeddingConfig, overrides=["kind=kd", "kd.K=4", "kd.D=3"])
    layer = KdEmbedding(num_rows=10, dim=6, config=config).eval().to(device)
    with DeviceTracker() as tracker:
        tracker.place_module(layer)
        train, test, table, labels = (t.to(device) for t in (train, test, table, labels))
        kl_train_test(train, test, num_entities=8)
        pca_3d(table)
        graph = RowGraph.from_groups(labels)
        graph.laplacian()
        graph.edge_keys()
        compact = export_kd(layer)
        rows = torch.arange(10, device=table.device)
        compact(rows)
        compact.fast_linear()(rows)
        codes = layer.codes()
        unpack_codes(pack_codes(codes, 2), 2, tuple(codes.shape))
    assert tracker.device_ops > 0
    assert not tracker.problems, summary(tracker)


GCN_CASES = {
    "features": [],
    "both-lookup-sse-l2": [
        "model.features=both", "node_embedding.sse.kind=se", "node_embedding.dropout=0.1",
        "node_embedding.regularize.kind=lp", "node_embedding.regularize.weight=0.01",
    ],
    "kd-online": [
        "model.features=embedding", "node_embedding.kind=kd", "node_embedding.kd.K=4",
        "node_embedding.kd.D=3", "node_embedding.kd.guidance=online",
    ],
}  # fmt: skip


@pytest.mark.parametrize("over", GCN_CASES.values(), ids=GCN_CASES.keys())
def test_gcn_step_and_validation_stay_on_the_device(
    tmp_path: Path, over: list[str], device: torch.device
) -> None:
    from embedlab.config.io import build_typed_config
    from embedlab.datasets.planetoid import load_planetoid
    from embedlab.gcn.config import GcnConfig
    from embedlab.gcn.run import build_model
    from embedlab.gcn.task import GcnTask
    from tests.gcn.planetoid_files import write_planetoid

    data = write_planetoid(tmp_path / "graph")
    config = build_typed_config(
        GcnConfig, overrides=[f"dataset={data}", "data.valid_size=10", *over]
    )
    graph = load_planetoid(config.dataset, valid_size=10)
    torch.manual_seed(0)
    model = build_model(config, graph).to(device)
    with DeviceTracker() as tracker:
        tracker.place_module(model)
        one_step(GcnTask(model=model, graph=graph, config=config, device=device), tracker)
    assert tracker.device_ops > 0
    assert not tracker.problems, summary(tracker)
