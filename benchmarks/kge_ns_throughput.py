"""Negative-sampling training throughput: embedlab vs PyKEEN 1.11.1, RotatE on WN18RR.

Issue 3's benchmark: positive triples per second, RotatE with 500 complex dimensions (PyKEEN
``embedding_dim=500``; embedlab ``model.dim=1000`` real numbers, the same tables), 256 negatives
per positive triple, batch 512, SANS / NSSALoss (margin 6, temperature 0.5), Adam lr 5e-5.

Equal work: PyKEEN's sLCWA draws 256 negatives per positive, each corrupting the head or the tail;
embedlab scores each triple in both directions (reciprocal relations) with ``negatives.head`` =
``negatives.tail`` = 128, i.e. 256 negatives per triple as well (plus one more positive score).
Each side times ``--batches`` steps (forward, backward, optimizer step, sampling included) after
3 warm-up steps, ``--repeats`` times, one after the other in one run; medians and their ratio.
``--per-row`` also times embedlab's previous path (candidate rows gathered into a ``(Q, k, d)``
tensor and scored per query row, ``KgeModel._whole_table_candidates`` forced False) beside the
gathered kernel (``kge/interactions/gathered_distance.py``), in the same run.

Usage: ``EMBEDLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/kge_ns_throughput.py``
(PyKEEN side in ``.bench-venvs/pykeen``, see benchmarks/setup_peer_envs.sh). The last stdout line
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import torch

from embedlab.datasets.kg import load_kg
from embedlab.evaluation.kge_eval import known_answers
from embedlab.kge.config import build_config
from embedlab.kge.run import build_model
from embedlab.kge.training_types import build_task
from embedlab.training.optim import build_optimizer

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".bench-venvs" / "pykeen" / "bin" / "python"
WARMUP_BATCHES = 3


def embedlab_rate(
    *, dim_complex: int, negatives: int, batches: int, repeats: int, per_row: bool = False
) -> dict:
    over = [
        "dataset=wn18rr",
        "model.name=rotate",
        f"model.dim={2 * dim_complex}",
        "loss.name=sans",
        "loss.adversarial_temperature=0.5",
        "loss.margin=6.0",
        "loss.negative_reduction=mean",
        "train.type=negative_sampling",
        f"train.negatives.head={negatives // 2}",
        f"train.negatives.tail={negatives - negatives // 2}",
        "train.batch_size=512",
        "train.optimizer=adam",
        "train.lr=5e-5",
        "entity_embedding.init.name=xavier_uniform",
        "relation_embedding.init.name=xavier_uniform",
    ]
    cfg = build_config(overrides=over)
    ds = load_kg("wn18rr")
    torch.manual_seed(0)
    model = build_model(cfg, ds)
    if per_row:  # the previous path: (Q, k, d) rows, one query row per checkpointed block
        model._whole_table_candidates = lambda: False  # type: ignore[method-assign]
    known = known_answers(ds.all_triples(), ds.num_relations)
    task = build_task(model=model, dataset=ds, known=known, config=cfg)
    optimizer = build_optimizer(model.parameters(), name=cfg.train.optimizer, lr=cfg.train.lr)
    model.train()

    def endless():
        gen = torch.Generator().manual_seed(0)
        while True:
            yield from task.batches(gen)

    def step(batch: torch.Tensor) -> int:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = task.loss(batch)
        loss.backward()
        optimizer.step()
        return len(batch)

    it = endless()
    for _ in range(WARMUP_BATCHES):
        step(next(it))
    rates = []
    for _ in range(repeats):
        t0, rows = time.perf_counter(), 0
        for _ in range(batches):
            rows += step(next(it))
        rates.append(rows / (time.perf_counter() - t0))
    return {
        "library": "embedlab (per-row path)" if per_row else "embedlab",
        "threads": torch.get_num_threads(),
        "positive_triples_per_s": statistics.median(rates),
        "all_rates": rates,
    }


def pykeen_rate(*, dim_complex: int, negatives: int, batches: int, repeats: int) -> dict:
    if not PEER_PYTHON.is_file():
        return {"error": f"{PEER_PYTHON} missing: run benchmarks/setup_peer_envs.sh"}
    cmd = [str(PEER_PYTHON), str(ROOT / "benchmarks" / "peer_pykeen_ns.py"), "--dim",
           str(dim_complex), "--negatives", str(negatives), "--batches", str(batches),
           "--repeats", str(repeats)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="500", help="comma-separated complex dimensions")
    parser.add_argument("--negatives", type=int, default=256)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--per-row", action="store_true", help="also time the previous path")
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = []
    for dim in (int(d) for d in args.dims.split(",")):
        kw = {"dim_complex": dim, "negatives": args.negatives, "batches": args.batches,
              "repeats": args.repeats}  # fmt: skip
        ours = embedlab_rate(**kw)
        peer = pykeen_rate(**kw)
        row = {**kw, "embedlab": ours, "pykeen": peer}
        if args.per_row:
            old = embedlab_rate(**kw, per_row=True)
            row["embedlab_per_row"] = old
            row["gathered_vs_per_row"] = (
                ours["positive_triples_per_s"] / old["positive_triples_per_s"]
            )
        if "positive_triples_per_s" in peer:
            row["ratio"] = ours["positive_triples_per_s"] / peer["positive_triples_per_s"]
        print(f"dim {dim}: embedlab {ours['positive_triples_per_s']:.1f} vs pykeen "
              f"{peer.get('positive_triples_per_s', float('nan')):.1f} positive triples/s "
              f"-> {row.get('ratio', float('nan')):.2f}x")  # fmt: skip
        results.append(row)
    summary = {"benchmark": "kge_ns_throughput", "dataset": "wn18rr", "model": "rotate",
               "results": results}  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
