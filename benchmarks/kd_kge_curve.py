"""KD codes on a KGE entity table: compression ratio vs filtered MRR (docs/kd.md, WN18RR).

Each setting ``K:D:code_dim[:composition]`` is one ``embedlab kge train`` run (in-process) that
starts from a trained run directory (``--teacher``): the entity table becomes KD codes with
pre-trained distillation guidance and auto-encoding (paper 003), fitted for ``--distill-epochs``
epochs on the teacher's table; the relation table and the interaction are copied from the
teacher. ``--finetune-epochs`` > 0 then trains end to end with the KGE loss (codes frozen,
code embeddings + composition + relations trained; the distillation term stays as a penalty).

Usage::

    EMBEDLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/kd_kge_curve.py \\
        --teacher runs/wn18rr-complex-sce-60min --runs runs/kd-kge \\
        --out docs/kd-kge-wn18rr.json --png docs/img/kd-kge-wn18rr.png

Runs are resumable (finished run directories are read, not re-trained). Last stdout line: JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from embedlab.kge.config import build_config
from embedlab.kge.run import train_run
from embedlab.plots import plot_compression_curve

DEFAULT_SETTINGS = ("64:48:128", "32:32:128", "32:16:128", "16:8:128", "16:4:128")


def _overrides(setting: str, args: argparse.Namespace) -> list[str]:
    parts = setting.split(":")
    K, D, code_dim = (int(x) for x in parts[:3])
    composition = parts[3] if len(parts) > 3 else "linear"
    kd = "entity_embedding.kd"
    return [
        f"train.init_from={args.teacher}",
        f"train.max_epochs={args.finetune_epochs}",
        "train.max_minutes=null",
        "train.early_stopping_patience=0",
        f"train.num_threads={args.threads}",
        "entity_embedding.kind=kd",
        "entity_embedding.dropout=0.0",
        f"{kd}.K={K}",
        f"{kd}.D={D}",
        f"{kd}.code_dim={code_dim}",
        f"{kd}.composition={composition}",
        f"{kd}.guidance=pdg",
        f"{kd}.autoencode=true",
        f"{kd}.freeze_codes=true",
        f"{kd}.distill_epochs={args.distill_epochs}",
        f"{kd}.distill_weight={args.distill_weight}",
    ]


def _row(setting: str, metrics: dict[str, Any]) -> dict[str, Any]:
    comp = metrics["compression"]
    table = comp["tables"]["entities"]
    return {
        "setting": setting,
        "K": table["K"],
        "D": table["D"],
        "ratio": comp["ratio"],
        "model_ratio": comp["model_ratio"],
        "embedding_bits_compressed": comp["embedding_bits_compressed"],
        "distill_relative_error": table.get("distill_relative_error"),
        "valid_mrr": metrics["valid"]["mrr"],
        "test_mrr": metrics["test"]["mrr"],
        "test_hits@1": metrics["test"]["hits@1"],
        "test_hits@10": metrics["test"]["hits@10"],
        "epochs": metrics["timing"]["epochs"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, required=True, help="trained KGE run directory")
    parser.add_argument("--runs", type=Path, default=Path("runs/kd-kge"))
    parser.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS))
    parser.add_argument("--distill-epochs", type=int, default=100)
    parser.add_argument("--distill-weight", type=float, default=1.0)
    parser.add_argument("--finetune-epochs", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument("--png", type=Path, default=None, help="compression vs MRR figure")
    args = parser.parse_args()
    teacher = json.loads((args.teacher / "metrics.json").read_text(encoding="utf-8"))
    rows = []
    for setting in args.settings:
        run_dir = args.runs / f"{setting.replace(':', '-')}-ft{args.finetune_epochs}"
        done = run_dir / "metrics.json"
        if not done.is_file():
            config = build_config(
                path=args.teacher / "config.yaml", overrides=_overrides(setting, args)
            )
            train_run(config, run_dir, overwrite=run_dir.exists())
        rows.append(_row(setting, json.loads(done.read_text(encoding="utf-8"))))
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "teacher": str(args.teacher),
        "teacher_test_mrr": teacher["test"]["mrr"],
        "teacher_valid_mrr": teacher["valid"]["mrr"],
        "distill_epochs": args.distill_epochs,
        "finetune_epochs": args.finetune_epochs,
        "rows": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.png:
        plot_compression_curve(
            [(r["ratio"], r["test_mrr"], r["setting"]) for r in rows],
            baseline=teacher["test"]["mrr"],
            out=args.png,
            ylabel="test MRR (filtered)",
            title=f"KD codes on the entity table ({args.teacher.name})",
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
