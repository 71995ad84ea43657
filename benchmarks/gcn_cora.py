"""GCN on Cora: bag-of-words features vs a learned node table, plain or KD codes (docs/gcn.md).

Each variant is ``configs/gcn/cora/<config>.yaml`` plus a few ``--set`` overrides, trained for
seeds 0..N-1 with ``embedlab.gcn.run.train_gcn`` (in-process; the same as ``embedlab gcn train
--config FILE --set seed=S --set ... --out RUN_DIR``). ``--out`` (JSON) is rewritten after every
run: per-seed valid/test accuracy, best epoch and timing, then mean and sample sd per variant,
the compression of a KD table, the command and the commit. Runs are resumable: a seed already
in the JSON, or a run directory with a metrics.json, is not trained again, and a killed run
resumes from its checkpoints/last.

Usage::

    EMBEDLAB_DATA_DIR=../shared/datasets OMP_NUM_THREADS=1 nice -n 19 \\
        .venv/bin/python benchmarks/gcn_cora.py --seeds 10 --threads 1 \\
        --runs runs/gcn-cora --out docs/gcn-cora.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from embedlab.config.io import build_typed_config
from embedlab.gcn.config import GcnConfig
from embedlab.gcn.run import train_gcn

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "gcn" / "cora"
PUBLISHED = {"kipf_welling_2017_gcn_cora_test_accuracy": 0.815}
KIPF_STOPPING = ["eval.metric=loss", "train.early_stopping_patience=10"]


def _kd(K: int, D: int, code_dim: int, *extra: str) -> list[str]:
    kd = "node_embedding.kd"
    return [f"{kd}.K={K}", f"{kd}.D={D}", f"{kd}.code_dim={code_dim}", *extra]


ONLINE = "node_embedding.kd.guidance=online"
# pre-trained distillation guidance (paper 003, section 2.3; supplement table 1's last row): codes
# fitted by an auto-encoder to the same seed's trained lookup table (train.init_from, added per
# seed), then trained end to end with the task loss
PDG = ["node_embedding.kd.guidance=pdg", "node_embedding.kd.autoencode=true",
       "node_embedding.kd.distill_epochs=100"]  # fmt: skip
# name -> (config file, overrides, what it is); run in this order
VARIANTS: dict[str, tuple[str, list[str], str]] = {
    "features": ("features", [], "Kipf & Welling: bag-of-words features, early stopping on valid loss"),
    "features-select-acc": ("features", ["eval.metric=accuracy", "train.early_stopping_patience=0"],
                            "features, selected on valid accuracy over 200 epochs (as the tables)"),
    "table-lookup": ("embedding", [], "learned 2708 x 128 lookup table, no features"),
    "table-kd-7x": ("embedding-kd", _kd(32, 16, 64), "KD codes K32 D16 d'64, end to end"),
    "table-kd-31x": ("embedding-kd", _kd(16, 8, 32), "KD codes K16 D8 d'32, end to end"),
    "table-kd-115x": ("embedding-kd", _kd(16, 4, 8), "KD codes K16 D4 d'8, end to end"),
    "table-kd-7x-online": ("embedding-kd", _kd(32, 16, 64, ONLINE),
                           "K32 D16 d'64 + online guidance (a full table trained alongside)"),
    "table-kd-31x-online": ("embedding-kd", _kd(16, 8, 32, ONLINE),
                            "K16 D8 d'32 + online guidance"),
    "table-kd-115x-online": ("embedding-kd", _kd(16, 4, 8, ONLINE),
                             "K16 D4 d'8 + online guidance"),
    "table-kd-7x-pdg": ("embedding-kd", _kd(32, 16, 64, *PDG),
                        "K32 D16 d'64 + PDG (auto-encoded) from the same seed's table-lookup run"),
    "table-kd-31x-pdg": ("embedding-kd", _kd(16, 8, 32, *PDG), "K16 D8 d'32 + PDG"),
    "table-kd-115x-pdg": ("embedding-kd", _kd(16, 4, 8, *PDG), "K16 D4 d'8 + PDG"),
    "table-lookup-kipf-stopping": ("embedding", KIPF_STOPPING,
                                   "lookup table with Kipf's early stopping on valid loss"),
    "table-kd-31x-kipf-stopping": ("embedding-kd", [*_kd(16, 8, 32), *KIPF_STOPPING],
                                   "KD K16 D8 d'32 with Kipf's early stopping on valid loss"),
    "features+table-lookup": ("features", ["model.features=both", "model.embedding_dim=128"],
                              "features concatenated with a learned 128-wide lookup table"),
}  # fmt: skip
# variant -> the variant whose run of the same seed is its PDG teacher (trained first if missing)
TEACHERS = {name: "table-lookup" for name in VARIANTS if name.endswith("-pdg")}


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def _seed_row(metrics: dict[str, Any], commit: str) -> dict[str, Any]:
    timing = metrics["timing"]
    return {
        "test_accuracy": metrics["test"]["accuracy"],
        "valid_accuracy": metrics["valid"]["accuracy"],
        "valid_loss": metrics["valid"]["loss"],
        "best_epoch": metrics["best_epoch"],
        "epochs": timing["epochs"],
        "train_seconds": timing["train_seconds"],
        "commit": commit,
    }


def _summary(entry: dict[str, Any]) -> None:
    """Mean and sample sd over the finished seeds, in place."""
    for key in ("test_accuracy", "valid_accuracy"):
        values = [row[key] for row in entry["seeds"].values()]
        entry[f"{key}_mean"] = statistics.fmean(values) if values else None
        entry[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else None


def _compression(metrics: dict[str, Any]) -> dict[str, Any] | None:
    comp = metrics["compression"]
    if comp is None:
        return None
    table = comp["tables"]["node_embedding"]
    keys = ("K", "D", "bits_full", "bits_codes", "bits_codebooks_and_composition", "ratio")
    return {key: table[key] for key in keys} | {"model_ratio": comp["model_ratio"]}


def _train(
    name: str, seed: int, args: argparse.Namespace, extra: list[str]
) -> tuple[GcnConfig, dict[str, Any]]:
    """Config and metrics.json of ``name``'s run for ``seed`` (trained, or resumed, if not
    finished)."""
    config_name, overrides, _ = VARIANTS[name]
    sets = [*overrides, *extra, f"seed={seed}", f"train.num_threads={args.threads}"]
    config = build_typed_config(GcnConfig, path=CONFIGS / f"{config_name}.yaml", overrides=sets)
    run_dir = args.runs / name / f"seed{seed}"
    done = run_dir / "metrics.json"
    if done.is_file():
        return config, json.loads(done.read_text(encoding="utf-8"))
    return config, train_gcn(config, run_dir, progress=False)  # resumes a killed run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=Path, default=Path("runs/gcn-cora"))
    parser.add_argument("--out", type=Path, default=Path("docs/gcn-cora.json"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {}
    if args.out.is_file():
        result = json.loads(args.out.read_text(encoding="utf-8"))
    result |= {
        "what": "GCN node classification on Cora (Planetoid split): test accuracy of the best "
        "valid epoch, seeds 0..N-1; docs/gcn.md",
        "command": "EMBEDLAB_DATA_DIR=../shared/datasets OMP_NUM_THREADS=1 nice -n 19 "
        + shlex.join([".venv/bin/python", "benchmarks/gcn_cora.py", *sys.argv[1:]]),
        "published": PUBLISHED,
    }
    variants = result.setdefault("variants", {})
    commit = _commit()
    for name in args.variants:
        config_name, overrides, what = VARIANTS[name]
        path = CONFIGS / f"{config_name}.yaml"
        entry = variants.setdefault(name, {"seeds": {}})
        entry |= {"what": what, "config": str(path.relative_to(ROOT)), "overrides": overrides}
        teacher = TEACHERS.get(name)
        if teacher is not None:
            entry["teacher"] = teacher
        for seed in range(args.seeds):
            if str(seed) in entry["seeds"]:
                continue
            extra: list[str] = []
            if teacher is not None:
                _, teacher_metrics = _train(teacher, seed, args, [])
                extra = [f"train.init_from={args.runs / teacher / f'seed{seed}'}"]
            config, metrics = _train(name, seed, args, extra)
            entry["seeds"][str(seed)] = _seed_row(metrics, commit)
            if teacher is not None:
                entry["seeds"][str(seed)]["teacher_test_accuracy"] = teacher_metrics["test"][
                    "accuracy"
                ]
            entry["compression"] = _compression(metrics)
            entry["embedding_dim"] = config.model.embedding_dim
            _summary(entry)
            args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
            row = entry["seeds"][str(seed)]
            print(f"{name} seed {seed}: test {row['test_accuracy']:.4f} (best epoch "
                  f"{row['best_epoch']}, {row['train_seconds']:.1f} s)", flush=True)  # fmt: skip
    for name in args.variants:
        entry = variants[name]
        ratio = entry["compression"]["ratio"] if entry.get("compression") else None
        print(json.dumps({"variant": name, "test_mean": entry["test_accuracy_mean"],
                          "test_sd": entry["test_accuracy_sd"], "ratio": ratio}))  # fmt: skip


if __name__ == "__main__":
    main()
