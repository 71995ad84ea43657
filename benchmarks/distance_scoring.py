"""Distance models against all entities: the fused kernel vs the old checkpointed blocks.

(a) Filtered evaluation of the WN18RR test split (3134 triples = 6268 queries, both directions)
    with randomly initialized RotatE (``configs/kge/wn18rr/rotate-sce.yaml``: dim 500 = 250
    complex) and TransE (``transe-sce.yaml``: dim 500, L1): seconds, median of ``--repeats``
    (the old path: ``--old-repeats``, it takes ~90 s a run).
(b) 1vsAll RotatE + SCE training steps on WN18RR, batch 512, through the project's task
    (``build_task``, as ``precision_throughput.py``): rows/s and PEAK memory
    (``ru_maxrss`` of a fresh subprocess per variant; the old variant runs under a 20 GiB
    address-space limit and reports a failure instead of swapping the machine).
(c) PyKEEN 1.11.1 RotatE (250 complex dims) filtered test evaluation in the same run, when
    ``.bench-venvs/pykeen`` exists (``benchmarks/setup_peer_envs.sh pykeen``).
(d) The L2 matmul expansion ``|a|^2 + |t|^2 - 2 a.t`` against the float64 formula: how many test
    ranks of a random TransE-L2 model differ (why the kernel keeps the exact formula).

Threads: 2 (``BENCH_THREADS``). The machine is shared: compare ratios from one run.
Usage: ``EMBEDLAB_DATA_DIR=/work/shared/datasets .venv/bin/python benchmarks/distance_scoring.py
--out docs/bench/distance_scoring.json``. One JSON line per measurement; the last is the summary.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from embedlab.datasets.kg import load_kg
from embedlab.evaluation.kge_eval import evaluate_kge, known_answers
from embedlab.kge.config import build_config
from embedlab.kge.interactions import score_all_tails
from embedlab.kge.run import build_model

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "kge" / "wn18rr"
PYKEEN_PY = ROOT / ".bench-venvs" / "pykeen" / "bin" / "python"
THREADS = int(os.environ.get("BENCH_THREADS", "2"))


def emit(record: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(record), flush=True)
    return record


def load(config: str) -> tuple[Any, Any, Any]:
    cfg = build_config(path=CONFIGS / config)
    ds = load_kg("wn18rr")
    torch.manual_seed(0)
    return cfg, ds, build_model(cfg, ds)


def eval_seconds(config: str, fused: bool, repeats: int) -> dict[str, Any]:
    cfg, ds, model = load(config)
    if not fused:  # the old path: checkpointed candidate blocks
        model.score_tails = lambda h, r: score_all_tails(  # type: ignore[method-assign]
            model.interaction,
            model.entities(h),
            model.relations(r),
            model.entities.all(),
            fused=False,
        )
    known = known_answers(ds.all_triples(), ds.num_relations)
    test = ds.splits["test"]
    evaluate_kge(model, test[:64], known)  # warm-up (compiles the kernel once)
    runs, mrr = [], 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        mrr = evaluate_kge(model, test, known)["mrr"]
        runs.append(time.perf_counter() - start)
    return emit(
        {
            "part": "eval",
            "model": f"{cfg.model.name} dim {cfg.model.dim}",
            "path": "fused" if fused else "old",
            "queries": 2 * len(test),
            "seconds": statistics.median(runs),
            "runs": runs,
            "mrr": mrr,
        }
    )


def train_child(fused: bool, batches: int) -> None:
    """One variant in this (fresh) process: prints rows/s and ru_maxrss as JSON."""
    from embedlab.kge import model as model_module
    from embedlab.kge.training_types import build_task
    from embedlab.training.optim import build_optimizer

    if not fused:
        model_module.score_all_tails = functools.partial(score_all_tails, fused=False)  # type: ignore[assignment]
    cfg, ds, model = load("rotate-sce.yaml")
    task = build_task(
        model=model, dataset=ds, known=known_answers(ds.all_triples(), ds.num_relations), config=cfg
    )
    optimizer = build_optimizer(model.parameters(), name=cfg.train.optimizer, lr=cfg.train.lr)
    stream = task.batches(torch.Generator().manual_seed(0))

    def step() -> int:
        optimizer.zero_grad(set_to_none=True)
        out = task.train_step(next(stream))
        out.loss.backward()
        optimizer.step()
        return out.rows

    step()  # warm-up (compiles)
    start, rows = time.perf_counter(), 0
    for _ in range(batches):
        rows += step()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(json.dumps({"rows_per_s": rows / seconds, "peak_rss_gib": peak, "steps": batches}))


def train_variant(fused: bool, batches: int, timeout: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--train-child", "fused" if fused else "old"]
    cmd += ["--batches", str(batches)]

    def limit() -> None:  # the old path went to 24 GiB in the issue: fail instead
        resource.setrlimit(resource.RLIMIT_AS, (20 * 2**30, 20 * 2**30))

    record: dict[str, Any] = {"part": "train", "model": "rotate dim 500 sce 1vsAll batch 512"}
    record["path"] = "fused" if fused else "old"
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=limit, check=False
        )
        if proc.returncode == 0:
            record.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        else:
            record["error"] = f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        record["error"] = f"timeout after {timeout} s"
    return emit(record)


PYKEEN_EVAL = """
import json, os, sys, time, torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.models import RotatE
from pykeen.triples import TriplesFactory
torch.set_num_threads(int(sys.argv[2]))
d = sys.argv[1]
train = TriplesFactory.from_path(f"{d}/train.txt", create_inverse_triples=True)
kw = dict(entity_to_id=train.entity_to_id, relation_to_id=train.relation_to_id)
valid = TriplesFactory.from_path(f"{d}/valid.txt", **kw)
test = TriplesFactory.from_path(f"{d}/test.txt", **kw)
torch.manual_seed(0)
model = RotatE(triples_factory=train, embedding_dim=250)
ev = RankBasedEvaluator(filtered=True)
extra = [train.mapped_triples, valid.mapped_triples]
kwargs = dict(additional_filter_triples=extra, batch_size=16, use_tqdm=False)
ev.evaluate(model, test.mapped_triples[:16], **kwargs)
start = time.perf_counter()
res = ev.evaluate(model, test.mapped_triples, **kwargs)
print(json.dumps({"seconds": time.perf_counter() - start, "triples": len(test.mapped_triples),
                  "mrr": res.get_metric("both.realistic.inverse_harmonic_mean_rank")}))
"""


def pykeen_eval(timeout: int) -> dict[str, Any]:
    record: dict[str, Any] = {"part": "eval", "model": "pykeen 1.11.1 RotatE 250 complex"}
    if not PYKEEN_PY.exists():
        record["error"] = "no .bench-venvs/pykeen (benchmarks/setup_peer_envs.sh pykeen)"
        return emit(record)
    data = Path(os.environ.get("EMBEDLAB_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    cmd = [str(PYKEEN_PY), "-c", PYKEEN_EVAL, str(data.resolve() / "wn18rr"), str(THREADS)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode == 0:
            record.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        else:
            record["error"] = f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        record["error"] = f"timeout after {timeout} s"
    return emit(record)


def l2_expansion_ranks() -> dict[str, Any]:
    """Ranks of the true tails of WN18RR test queries under a random TransE-L2 model (dim 500):
    exact float32 difference formula and float32 matmul expansion vs float64 (unfiltered)."""
    cfg, ds, model = load("transe-sce.yaml")
    test = ds.splits["test"]
    with torch.no_grad():
        a = model.interaction.anchor(model.entities(test[:, 0]), model.relations(test[:, 1]))
        t = model.entities.all()
        exact64 = torch.cdist(a.double(), t.double(), compute_mode="donot_use_mm_for_euclid_dist")
        exact32 = torch.cdist(a, t, compute_mode="donot_use_mm_for_euclid_dist")
        sq = (a * a).sum(1, keepdim=True) + (t * t).sum(1) - 2 * a @ t.T  # (B, N)
        expansion = sq.clamp_min(0).add(1e-12).sqrt()

    def ranks(dist: torch.Tensor) -> torch.Tensor:
        true = dist.gather(1, test[:, 2:3])
        return (dist < true).sum(1) + 1

    ref = ranks(exact64)
    return emit(
        {
            "part": "l2_expansion",
            "queries": len(test),
            "rank_mismatches_exact_fp32": int((ranks(exact32) != ref).sum()),
            "rank_mismatches_expansion_fp32": int((ranks(expansion) != ref).sum()),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-repeats", type=int, default=1)
    parser.add_argument("--batches", type=int, default=3, help="timed training steps")
    parser.add_argument("--skip-old", action="store_true")
    parser.add_argument("--train-child", choices=["fused", "old"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    if args.train_child:
        train_child(args.train_child == "fused", args.batches)
        return
    records = [l2_expansion_ranks()]
    for config in ("rotate-sce.yaml", "transe-sce.yaml"):
        records.append(eval_seconds(config, True, args.repeats))
        if not args.skip_old:
            records.append(eval_seconds(config, False, args.old_repeats))
    records.append(pykeen_eval(timeout=900))
    records.append(train_variant(True, args.batches, timeout=900))
    if not args.skip_old:
        records.append(train_variant(False, 1, timeout=900))
    summary = {"benchmark": "distance_scoring", "threads": THREADS, "torch": torch.__version__}
    summary["results"] = records
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
