"""Memory and communication model of KGE training at four graph sizes (docs/scale.md).

Arithmetic, not measurement: bytes of the entity table, its optimizer state and gradient, the
1vsAll score block, and what each data-parallel mode moves per step and per epoch, for
WN18RR, FB15k-237, Wikidata5M and Freebase. Sizes are the published dataset statistics
(entities, relations, training triples), embedding width ``--dim`` (200 as in the issue).

Modes (per rank, W ranks, global batch B, fp32):

* ``ddp``: every rank holds the whole model; the entity gradient of ``table[idx]`` is a dense
  ``(N, d)`` tensor in PyTorch autograd, so DDP's ring all-reduce moves ``2 (W-1)/W * N d 4``
  bytes per rank per step; memory per rank = table + gradient + optimizer state (Adam: 2x,
  Adagrad: 1x) + score block.
* ``row_wise``: TorchRec shards the rows; rank r holds ``N/W`` rows and their fused optimizer
  state (no dense gradient). Per step a rank sends its ids and receives the rows its batch looks
  up (all-to-all), and sends back as many gradient rows: ``2 * L * d * 4`` bytes for ``L``
  looked-up rows. Negative sampling looks up ``B/W * (2 + k)`` rows; 1vsAll needs every
  candidate (``lookup_all``: the whole table on every rank, ``N d 4`` in and out), which removes
  the point of sharding: sharded tables go with negative sampling.

Usage: ``.venv/bin/python benchmarks/scale_model.py --out docs/bench/scale_model.json``; the last
stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# (entities, relations, training triples); sources: WN18RR, FB15k-237 as in ../shared/datasets
# (Dettmers et al. 2018; Toutanova & Chen 2015); Wikidata5M (Wang et al. 2021, KEPLER, table 1:
# transductive split); Freebase (Lerer et al. 2019, PyTorch-BigGraph, "full Freebase").
DATASETS: dict[str, tuple[int, int, int]] = {
    "wn18rr": (40_943, 11, 86_835),
    "fb15k-237": (14_541, 237, 272_115),
    "wikidata5m": (4_594_485, 822, 20_614_279),
    "freebase": (86_054_151, 14_824, 338_586_276),
}
GB = 1e9


def model(
    name: str, *, dim: int, batch: int, world: int, negatives: int, optimizer_states: int
) -> dict[str, Any]:
    n, r, triples = DATASETS[name]
    table = n * dim * 4
    relations = 2 * r * dim * 4
    steps = -(-triples // batch)
    score_block = batch // world * n * 4  # (B/W, N) fp32 per rank, both 1vsAll directions alike
    ddp_step = 2 * (world - 1) / world * (table + relations)
    looked_up = batch // world * (2 + negatives)
    sharded_step = 2 * looked_up * dim * 4
    return {
        "entities": n,
        "relations": r,
        "train_triples": triples,
        "entity_table_gb": table / GB,
        "ddp": {
            "memory_per_rank_gb": (table * (2 + optimizer_states) + relations) / GB,
            "score_block_1vsall_gb": score_block / GB,
            "allreduce_per_step_gb": ddp_step / GB,
            "allreduce_per_epoch_gb": ddp_step * steps / GB,
        },
        "row_wise": {
            "memory_per_rank_gb": table * (1 + optimizer_states) / world / GB,
            "all_to_all_per_step_gb_negative_sampling": sharded_step / GB,
            "all_to_all_per_epoch_gb_negative_sampling": sharded_step * steps / GB,
            "all_to_all_per_step_gb_1vsall": 2 * table / GB,
        },
        "steps_per_epoch": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--batch", type=int, default=512, help="global batch (triples)")
    parser.add_argument("--world", type=int, default=8)
    parser.add_argument("--negatives", type=int, default=256, help="per triple (NS)")
    parser.add_argument("--optimizer-states", type=int, default=2, help="Adam 2, Adagrad 1")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {
        "assumptions": {k: v for k, v in vars(args).items() if k != "out"},
        "datasets": {
            name: model(
                name,
                dim=args.dim,
                batch=args.batch,
                world=args.world,
                negatives=args.negatives,
                optimizer_states=args.optimizer_states,
            )
            for name in DATASETS
        },
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
