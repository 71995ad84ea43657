"""A torchrun worker: filtered and raw ranks of a random ComplEx model on kinship, split over the
ranks (``rank_queries_with_raw(world=...)``) and gathered; rank 0 writes them to ``argv[1]``
(safetensors).

``argv[2]``: the evaluation batch size (small, so that ranks hold several batches and the
query count is not a multiple of the batch or of the world size).
"""

from __future__ import annotations

import sys

import torch
from safetensors.torch import save_file

from embedlab.datasets.kg import load_kg
from embedlab.distributed import init_world, shutdown
from embedlab.evaluation.kge_eval import known_answers, rank_queries_with_raw
from embedlab.evaluation.queries import as_queries
from embedlab.kge.config import build_config
from embedlab.kge.model import KgeModel


def ranks(world_size_hint: str, batch_size: int) -> dict[str, torch.Tensor]:
    world, _ = init_world(torch.device("cpu"))
    config = build_config(overrides=["dataset=kinship", "model.name=complex", "model.dim=8"])
    dataset = load_kg("kinship")
    torch.manual_seed(0)
    model = KgeModel(
        num_entities=dataset.num_entities, num_relations=dataset.num_relations, config=config
    ).eval()
    known = known_answers(dataset.all_triples(), dataset.num_relations)
    queries = as_queries(dataset.splits["test"][:1001], dataset.num_relations)  # 2002 queries
    result, raw = rank_queries_with_raw(model, queries, known, batch_size=batch_size, world=world)
    shutdown(world)
    return {
        "optimistic": result.optimistic,
        "pessimistic": result.pessimistic,
        "num_candidates": result.num_candidates,
        "raw_optimistic": raw.optimistic,
        "raw_pessimistic": raw.pessimistic,
        "rank": torch.tensor(world.rank),
        "world_size": torch.tensor(world.world_size),
    }


if __name__ == "__main__":
    out = ranks(sys.argv[1], int(sys.argv[2]))
    if int(out["rank"]) == 0:
        save_file(out, sys.argv[1])
