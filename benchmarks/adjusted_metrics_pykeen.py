"""Rank metrics on the same ranks: embedlab against PyKEEN 1.11.1 (must agree to 1e-6).

Ranks are computed once, by embedlab, then both libraries compute MRR, MR, Hits@1/3/10,
adjusted MRR and AMRI from them:

* ``umls_filtered`` / ``umls_raw``: realistic ranks of a DistMult (dim 32, 1vsAll, SCE) trained
  for a few seconds on UMLS (shipped package data) on the test split, both directions, filtered
  and raw from one scoring pass (``rank_queries_with_raw``); ``num_candidates`` as embedlab
  counts them (finite scores after filtering, true answer included; PyKEEN's evaluator counts
  the same way, ``torch.isfinite(scores).sum(1)`` in ``pykeen/evaluation/ranks.py``).
* ``random_large``: 20,000 seeded uniform ranks ``1..n_i`` with ``n_i`` up to 40,943 (WN18RR's
  entity count), half-integer realistic ranks included: large harmonic numbers.

PyKEEN runs in its own interpreter (``--pykeen-python``, default ``.bench-venvs/pykeen``, made by
``benchmarks/setup_peer_envs.sh pykeen``) on the ranks and candidate counts passed as ``.npy``
files; its classes: ``InverseHarmonicMeanRank``, ``ArithmeticMeanRank``, ``HitsAtK``,
``AdjustedInverseHarmonicMeanRank``, ``AdjustedArithmeticMeanRankIndex``.

Usage (the JSON committed as ``docs/bench/adjusted_metrics_pykeen.json``)::

    EMBEDLAB_DATA_DIR=/work/shared/datasets nice -n 19 .venv/bin/python \\
        benchmarks/adjusted_metrics_pykeen.py \\
        --pykeen-python /work/main/.bench-venvs/pykeen/bin/python \\
        --out docs/bench/adjusted_metrics_pykeen.json

Exit status 1 when a difference exceeds ``--tolerance`` (1e-6).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedlab.evaluation.breakdown import summary
from embedlab.evaluation.kge_eval import known_answers, rank_queries_with_raw
from embedlab.evaluation.queries import as_queries
from embedlab.kge.config import build_config
from embedlab.kge.run import load_run, train_run

ROOT = Path(__file__).resolve().parents[1]
PYKEEN_PY = ROOT / ".bench-venvs" / "pykeen" / "bin" / "python"
KEYS = ("mrr", "mr", "hits@1", "hits@3", "hits@10", "adjusted_mrr", "amri")
TRAIN = ["dataset=umls", "model.name=distmult", "model.dim=32", "loss.name=sce",
         "train.type=1vsAll", "train.max_epochs=5", "train.batch_size=256", "train.lr=0.1",
         "train.num_threads=1", "eval.every=5", "seed=0"]  # fmt: skip

PYKEEN_SCRIPT = """
import json, sys
import numpy as np
import pykeen
from pykeen.metrics.ranking import (
    AdjustedArithmeticMeanRankIndex, AdjustedInverseHarmonicMeanRank, ArithmeticMeanRank,
    HitsAtK, InverseHarmonicMeanRank,
)
metrics = {
    "mrr": InverseHarmonicMeanRank(), "mr": ArithmeticMeanRank(),
    "hits@1": HitsAtK(k=1), "hits@3": HitsAtK(k=3), "hits@10": HitsAtK(k=10),
    "adjusted_mrr": AdjustedInverseHarmonicMeanRank(), "amri": AdjustedArithmeticMeanRankIndex(),
}
out = {"pykeen_version": pykeen.get_version(), "sets": {}}
for name in sys.argv[2:]:
    ranks = np.load(f"{sys.argv[1]}/{name}.ranks.npy")
    cand = np.load(f"{sys.argv[1]}/{name}.num_candidates.npy")
    out["sets"][name] = {k: float(m(ranks=ranks, num_candidates=cand)) for k, m in metrics.items()}
print(json.dumps(out))
"""


def rank_sets() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``name -> ((Q,) float64 realistic ranks, (Q,) int64 candidate counts)``."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "umls"
        train_run(build_config(overrides=TRAIN), run_dir, progress=False)
        _, dataset, model = load_run(run_dir)
    known = known_answers(dataset.all_triples(), dataset.num_relations)
    queries = as_queries(dataset.splits["test"], dataset.num_relations)
    filtered, raw = rank_queries_with_raw(model, queries, known)
    g = torch.Generator().manual_seed(0)
    n = torch.randint(1, 40_944, (20_000,), generator=g)
    lo = (torch.rand(n.shape, generator=g, dtype=torch.float64) * n).floor() + 1  # 1..n_i
    ties = torch.randint(0, 3, n.shape, generator=g)
    hi = torch.minimum(lo + ties, n.double())  # pessimistic rank: 0-2 ties
    return {
        "umls_filtered": (filtered.realistic, filtered.num_candidates),
        "umls_raw": (raw.realistic, raw.num_candidates),
        "random_large": ((lo + hi) / 2, n),
    }


def pykeen_values(
    python: Path, sets: dict[str, tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, Any]:
    """PyKEEN's metrics of each set, computed in ``python`` (the PyKEEN interpreter)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ranks, cand) in sets.items():
            np.save(f"{tmp}/{name}.ranks.npy", ranks.double().numpy())
            np.save(f"{tmp}/{name}.num_candidates.npy", cand.long().numpy())
        done = subprocess.run(
            [str(python), "-c", PYKEEN_SCRIPT, tmp, *sets],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pykeen-python", type=Path, default=PYKEEN_PY)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    if not args.pykeen_python.is_file():
        sys.exit(f"no PyKEEN interpreter at {args.pykeen_python}: give --pykeen-python")
    sets = rank_sets()
    theirs = pykeen_values(args.pykeen_python, sets)
    result: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "pykeen_version": theirs["pykeen_version"],
        "torch": torch.__version__,
        "tolerance": args.tolerance,
        "sets": {},
    }
    worst = 0.0
    for name, (ranks, cand) in sets.items():
        mine = summary(ranks, cand)
        diff = {k: abs(mine[k] - theirs["sets"][name][k]) for k in KEYS}
        worst = max(worst, *diff.values())
        result["sets"][name] = {
            "num_queries": mine["num_queries"],
            "num_candidates_range": [int(cand.min()), int(cand.max())],
            "embedlab": {k: mine[k] for k in KEYS},
            "pykeen": theirs["sets"][name],
            "abs_diff": diff,
        }
    result["max_abs_diff"] = worst
    result["agree"] = worst <= args.tolerance
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if result["agree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
