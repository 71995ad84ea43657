"""What each rank of the sharded-table tests runs (imported by spawned processes).

:func:`launch` starts W gloo ranks on CPU; every rank runs the same checks in the same order
(their collectives must match) and writes ``{check: "ok" | traceback}`` to ``rank<r>.json``.
A check does all its collective work first and compares at the end, so a failed comparison on
one rank does not leave the other waiting in a collective.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import ReduceLROnPlateau

from embedlab.embeddings.sharded import (
    ShardedEmbeddingTable,
    replicated,
    sharded_layers,
    sharded_parameter_names,
    step_sharded,
)
from embedlab.kge.config import KgeConfig, build_config
from embedlab.kge.model import KgeModel

N, R, DIM = 50, 3, 8  # entities, relations (2R with reciprocals), width
TOL = {"rtol": 0.0, "atol": 1e-6}


def kge_config(name: str, *over: str, sharded: bool, optimizer: str = "adagrad") -> KgeConfig:
    """A tiny KGE config; ``sgd`` (not a KGE choice) is set past validation, for the oracle."""
    shard = ["entity_embedding.sharding=row_wise"] if sharded else []
    base = ["train.optimizer=adagrad", "train.lr=0.1", f"model.name={name}", f"model.dim={DIM}"]
    config = build_config(overrides=[*base, *shard, *over])
    if optimizer != "adagrad":
        config.train = config.train.model_copy(update={"optimizer": optimizer})
    return config


def pair(name: str, *over: str, optimizer: str = "adagrad") -> tuple[KgeModel, KgeModel]:
    """(sharded, dense) models with the same weights (same seed; the entity table copied too)."""
    torch.manual_seed(1)
    config = kge_config(name, *over, sharded=True, optimizer=optimizer)
    sharded = KgeModel(num_entities=N, num_relations=R, config=config)
    torch.manual_seed(1)
    dense = KgeModel(num_entities=N, num_relations=R, config=kge_config(name, *over, sharded=False))
    entities = sharded.entities
    assert isinstance(entities, ShardedEmbeddingTable)
    same_init = torch.equal(entities.full_weight(), dense.entities.lookup_all())
    assert same_init, "same seed, different initial entity table"
    entities.load_full_weight(dense.entities.lookup_all().detach())
    return sharded, dense


def batches(world: int, size: int = 4, seed: int = 7) -> list[torch.Tensor]:
    """One ``(size, 3)`` triple batch per rank, the same list on every rank."""
    g = torch.Generator().manual_seed(seed)
    h, t = torch.randint(0, N, (2, world, size), generator=g)
    r = torch.randint(0, 2 * R, (world, size), generator=g)
    return list(torch.stack([h, r, t], -1))


def loss_of(model: KgeModel, batch: torch.Tensor) -> torch.Tensor:
    """1vsAll cross-entropy + a triple-score term + the penalty: several lookups per step."""
    h, r, t = batch.unbind(1)
    ce = torch.nn.functional.cross_entropy(model.score_tails(h, r), t)
    return ce + 0.1 * model.score_triples(batch).sum() + model.penalty(batch)


# -- checks (every rank runs each) ---------------------------------------------------------------


def check_scores(rank: int, world: int) -> None:
    """score_tails / score_triples of the sharded model equal the dense ones (rank's own batch)."""
    for name in ("distmult", "complex"):
        sharded, dense = pair(name)
        batch = batches(world)[rank]
        h, r, _ = batch.unbind(1)
        with torch.no_grad():
            got = (sharded.eval().score_tails(h, r), sharded.score_triples(batch))
            want = (dense.eval().score_tails(h, r), dense.score_triples(batch))
        torch.testing.assert_close(got, want, **TOL)


def _steps(rank: int, world: int, optimizer: str, over: tuple[str, ...]) -> None:
    sharded, dense = pair("complex", *over, optimizer=optimizer)
    opt = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad}[optimizer]
    dense_opt = opt([dense.entities.lookup_all()], lr=0.1)  # entity table only
    entities = sharded.entities
    assert isinstance(entities, ShardedEmbeddingTable)
    plateau = ReduceLROnPlateau(entities.fused_optimizer, mode="max", factor=0.5, patience=0)
    for step in range(2):
        if step == 1:  # a plateau halves the fused optimizer's lr before the 2nd step
            plateau.step(1.0)
            plateau.step(0.5)
            dense_opt.param_groups[0]["lr"] = 0.05
        all_batches = batches(world, seed=step)
        loss_of(sharded.train(), all_batches[rank]).backward()
        step_sharded(sharded)
        # DDP semantics: the gradient is the mean over ranks of each rank's loss gradient
        dense_opt.zero_grad()
        (sum(loss_of(dense.train(), b) for b in all_batches) / world).backward()
        dense_opt.step()
    lr = entities.fused_optimizer.param_groups[0]["lr"]
    torch.testing.assert_close(entities.full_weight(), dense.entities.lookup_all().detach(), **TOL)
    assert abs(lr - 0.05) < 1e-9, lr


def check_step_sgd(rank: int, world: int) -> None:
    """Two SGD steps (each rank its own batch) equal torch.optim.SGD on the mean loss."""
    _steps(rank, world, "sgd", ())


def check_step_adagrad(rank: int, world: int) -> None:
    """Two Adagrad steps with a weighted N3 penalty equal torch.optim.Adagrad."""
    reg = ("kind=n3", "weight=0.01", "weighted=true")
    _steps(rank, world, "adagrad", tuple(f"entity_embedding.regularize.{r}" for r in reg))


def check_sse(rank: int, world: int) -> None:
    """SSE-SE (p=0.5) in training mode: same seed, same replaced rows and same update."""
    sharded, dense = pair("distmult", "entity_embedding.sse.kind=se", "entity_embedding.sse.p=0.5")
    idx = torch.arange(20).reshape(4, 5) + rank  # (4, 5)
    dense_opt = torch.optim.Adagrad([dense.entities.lookup_all()], lr=0.1)
    torch.manual_seed(10 + rank)
    got = sharded.entities.train()(idx)  # (4, 5, d)
    (got * torch.arange(DIM)).sum().backward()
    step_sharded(sharded)
    outs = []
    for r in range(world):  # each rank's forward, same seed
        torch.manual_seed(10 + r)
        outs.append(dense.entities.train()(torch.arange(20).reshape(4, 5) + r))
    dense_opt.zero_grad()
    (sum((o * torch.arange(DIM)).sum() for o in outs) / world).backward()
    dense_opt.step()
    assert got.shape == (4, 5, DIM)
    torch.testing.assert_close(got.detach(), outs[rank].detach(), **TOL)
    plain = dense.entities.lookup(idx).detach()
    assert not torch.equal(got.detach(), plain), "SSE replaced no index"
    full = sharded.entities.full_weight()
    torch.testing.assert_close(full, dense.entities.lookup_all().detach(), **TOL)


def check_state_dict(rank: int, world: int) -> None:
    """state_dict: plain full tensors (weight, Adagrad state); a fresh table loads them and then
    trains on exactly as the saved one (exact resume)."""
    saved, _ = pair("complex")
    loss_of(saved.train(), batches(world)[rank]).backward()
    step_sharded(saved)
    state = saved.state_dict()
    torch.manual_seed(99)
    fresh = KgeModel(num_entities=N, num_relations=R, config=kge_config("complex", sharded=True))
    fresh.load_state_dict(state)
    for model in (saved, fresh):
        model.relations.zero_grad()
        loss_of(model.train(), batches(world, seed=3)[rank]).backward()
        step_sharded(model)
    after = [m.entities.state_dict() for m in (saved, fresh)]  # collective, both models
    ents = sharded_layers(saved)["entities"]
    names = sharded_parameter_names(saved)
    assert {k for k in state if k.startswith("entities.")} == {
        "entities.weight",
        "entities.optimizer_state.momentum1",
    }
    assert state["entities.weight"].shape == (N, DIM)
    assert state["entities.optimizer_state.momentum1"].shape == (N, DIM)
    assert state["entities.optimizer_state.momentum1"].abs().sum() > 0
    assert type(state["entities.weight"]) is torch.Tensor
    assert not list(ents.parameters()) and names == set()
    torch.testing.assert_close(after[0], after[1], rtol=0.0, atol=0.0)


def check_replicated(rank: int, world: int) -> None:
    """Inside replicated(): uneven numbers of lookups per rank, no collective, dense scores."""
    sharded, dense = pair("distmult")
    with torch.no_grad(), replicated(sharded):
        for batch in batches(world, seed=5)[: rank + 1]:  # rank r scores r + 1 batches
            h, r, _ = batch.unbind(1)
            torch.testing.assert_close(
                sharded.eval().score_tails(h, r), dense.eval().score_tails(h, r), **TOL
            )


class _LossModule(nn.Module):
    """``forward(batch)`` = :func:`loss_of`, so DDP can wrap a training step."""

    def __init__(self, model: KgeModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return loss_of(self.model, batch)


def check_ddp(rank: int, world: int) -> None:
    """DDP over the dense parameters (sharded names ignored) + step_sharded: both tables train
    as one dense model on the mean loss (the loop's recipe)."""
    sharded, dense = pair("complex")
    module = _LossModule(sharded.train())
    ignored = [f"model.{n}" for n in sharded_parameter_names(sharded)]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, ignored)
    ddp = DistributedDataParallel(module)
    dense_params = list(sharded.parameters())  # relations only: the shards are no parameters
    opt = torch.optim.Adagrad(dense_params, lr=0.1)
    ref_opt = torch.optim.Adagrad(dense.parameters(), lr=0.1)
    for step in range(2):
        all_batches = batches(world, seed=20 + step)
        opt.zero_grad()
        ddp(all_batches[rank]).backward()  # DDP averages the relation gradients
        opt.step()
        step_sharded(sharded)
        ref_opt.zero_grad()
        (sum(loss_of(dense.train(), b) for b in all_batches) / world).backward()
        ref_opt.step()
    ents = sharded.entities.full_weight()
    assert len(dense_params) == 1
    torch.testing.assert_close(ents, dense.entities.lookup_all().detach(), **TOL)
    torch.testing.assert_close(
        sharded.relations.lookup_all().detach(), dense.relations.lookup_all().detach(), **TOL
    )


CHECKS: dict[str, Callable[[int, int], None]] = {
    "scores": check_scores,
    "step_sgd": check_step_sgd,
    "step_adagrad": check_step_adagrad,
    "sse": check_sse,
    "state_dict": check_state_dict,
    "replicated": check_replicated,
    "ddp": check_ddp,
}


def _rank_main(rank: int, world: int, folder: str, names: list[str]) -> None:
    torch.set_num_threads(1)
    store = Path(folder) / "store"
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),
    )
    results: dict[str, str] = {}
    try:
        for name in names:
            try:
                CHECKS[name](rank, world)
                results[name] = "ok"
            except Exception:
                results[name] = traceback.format_exc()
        dist.barrier()  # without it, exits sometimes aborted (TorchRec on gloo)
    finally:
        (Path(folder) / f"rank{rank}.json").write_text(json.dumps(results))
        dist.destroy_process_group()


def launch(folder: Path, *, world: int, names: list[str], timeout: float = 180.0) -> list[dict]:
    """Run the named checks on ``world`` spawned gloo ranks; each rank's results."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    context = mp.start_processes(
        _rank_main, args=(world, str(folder), names), nprocs=world, join=False
    )
    deadline = time.monotonic() + timeout
    try:
        while not context.join(timeout=1.0):
            if time.monotonic() > deadline:
                raise TimeoutError(f"sharded checks {names} still running after {timeout} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(world)]
