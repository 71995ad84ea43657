"""KD codes on a KGE entity table: compression ratio vs filtered MRR (docs/kd.md, WN18RR).

Each setting ``K:D:code_dim[:composition]`` is one chain of ``embedlab kge train`` runs
(in-process) that starts from a trained run directory (``--teacher``):

1. **distill** (reconstruction only): the entity table becomes KD codes with pre-trained
   distillation guidance and auto-encoding (paper 003), fitted for ``--distill-epochs`` epochs
   on the teacher's table; the relation table and the interaction are copied from the teacher.
   ``--finetune-epochs`` > 0 (only without the stages below) then trains end to end with the KGE
   loss in the same run (codes frozen, code embeddings + composition + relations trained; the
   distillation term stays as a penalty). Run directory ``{setting}-ft{finetune_epochs}``.
2. **joint** (``--joint-epochs J`` > 0): ``--init-from`` the distill run, which hands over its
   KD table whole (same structure: :func:`embedlab.kge.run.init_from_run`); J epochs of the KGE
   loss training the code encoder (straight-through codes), code embeddings, composition and
   relations, the distillation term kept as a penalty (``--joint-distill-weight``, default
   ``--distill-weight``; 0 drops it); no distillation
   stage (``distill_epochs=0``). Run directory ``{distill run}-joint{J}``.
3. **frozen** (``--frozen-epochs F`` > 0): ``--init-from`` the joint run (else the distill run):
   its final hard codes are kept (``freeze_codes=true``), F epochs train the code embeddings,
   composition and relations (the same penalty weight as stage 2). Run directory ``{previous run}-frozen{F}``.

With ``--joint-epochs 0 --frozen-epochs 0`` (the defaults) the script runs exactly what it ran
before the stages existed. ``--preset wn18rr`` / ``fb15k-237`` choose settings near 10x, 25x,
50x, 100x (:data:`PRESETS`). ``--lr`` and ``--optimizer`` override the teacher's learning rate
and optimizer in stages 2-3, ``--joint-distill-weight`` their distillation penalty weight
(default: ``--distill-weight``, which the distill stage uses); ``--stage-set KEY=VALUE``
(repeatable) adds config overrides to stages 2-3 after the script's own, e.g.
``entity_embedding.dropout=0.3`` (the script sets 0.0 in every stage).

Usage::

    EMBEDLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/kd_kge_curve.py \\
        --teacher runs/wn18rr-complex-sce-40ep --runs runs/kd-kge --preset wn18rr \\
        --distill-epochs 20 --optimizer adagrad --lr 0.02 --joint-distill-weight 0 \\
        --joint-epochs 10 --frozen-epochs 5 \\
        --out runs/kd-kge/e2e-wn18rr.json --png runs/kd-kge/e2e-wn18rr.png

``--plot-only`` draws ``--png`` from ``--out`` as it stands (a partial curve says "N of M
settings" in its title) and trains nothing.

Runs are resumable: finished run directories are read, not re-trained; an unfinished one resumes
from its last checkpoint; a stage directory (finished or not) that holds a run with other options
(its ``config.yaml``) is refused with the config difference instead of being silently restarted
or reused (the directory names do not hold ``--lr``, ``--optimizer`` or the penalty weight).
Last stdout line: the JSON (``rows``: one per setting, with ``stages``); ``--out`` is rewritten as each setting finishes (``complete``:
false until the last one), so a killed curve keeps its finished settings; a complete ``--out``
is replaced only by the next complete result. A setting none of whose stage directories exists
(a new machine, or the runs moved away) is read from ``--out``'s row when ``--out`` was written
for the same teacher metrics and options (:data:`SAME_RUN_KEYS`), so that the curve continues
from its JSON alone; with other options or another teacher, it is trained again (stderr says why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from embedlab.errors import UserError
from embedlab.kge.config import build_config
from embedlab.kge.run import train_run
from embedlab.plots import plot_compression_curve
from embedlab.training.run_dir import config_differences

DEFAULT_SETTINGS = ("64:48:128", "32:32:128", "32:16:128", "16:8:128", "16:4:128")

PRESETS: dict[str, tuple[str, ...]] = {
    # WN18RR, 40,943 x 128: 10.0x, 25.5x, 51.1x, 100.1x (kd_table_bits; docs/kd.md)
    "wn18rr": ("64:32:128", "32:18:128", "16:12:128", "16:5:128"),
    # FB15k-237, 14,541 x 128: 10.2x, 25.0x, 50.7x, 102.3x
    "fb15k-237": ("32:26:128", "16:15:128", "16:10:64", "16:6:32"),
}


# the keys of --out that must equal this run's for its rows to be reused (teacher by its metrics:
# a retrained teacher with the same config and seed gives the same numbers, its path may differ)
SAME_RUN_KEYS = (
    "teacher_test_mrr",
    "teacher_valid_mrr",
    "distill_epochs",
    "finetune_epochs",
    "joint_epochs",
    "frozen_epochs",
    "lr",
    "optimizer",
    "distill_weight",
    "joint_distill_weight",
    "stage_set",
)
# what a curve JSON written before a key existed ran with
_KEY_DEFAULTS: dict[str, Any] = {"stage_set": []}


def _kd_overrides(setting: str, args: argparse.Namespace) -> list[str]:
    """The KD table of ``setting`` (``K:D:code_dim[:composition]``): structure and guidance,
    the same in every stage (so that ``--init-from`` hands the table over whole)."""
    parts = setting.split(":")
    K, D, code_dim = (int(x) for x in parts[:3])
    composition = parts[3] if len(parts) > 3 else "linear"
    kd = "entity_embedding.kd"
    return [
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
    ]


def task_distill_weight(args: argparse.Namespace) -> float:
    """The distillation penalty weight of stages joint/frozen: ``--joint-distill-weight``, else
    ``--distill-weight``."""
    return args.distill_weight if args.joint_distill_weight is None else args.joint_distill_weight


def stage_overrides(
    stage: str, setting: str, init_from: Path, args: argparse.Namespace
) -> list[str]:
    """``--set`` overrides of one stage (``distill``, ``joint`` or ``frozen``) of ``setting``,
    initialized from run directory ``init_from`` (the teacher for ``distill``)."""
    common = [f"train.init_from={init_from}", *_kd_overrides(setting, args)]
    kd = "entity_embedding.kd"
    if stage == "distill":
        return [
            *common,
            f"{kd}.distill_weight={args.distill_weight}",
            f"train.max_epochs={args.finetune_epochs}",
            f"{kd}.freeze_codes=true",
            f"{kd}.distill_epochs={args.distill_epochs}",
        ]
    epochs = args.joint_epochs if stage == "joint" else args.frozen_epochs
    lr = [] if args.lr is None else [f"train.lr={args.lr}"]
    optimizer = [] if args.optimizer is None else [f"train.optimizer={args.optimizer}"]
    weight = task_distill_weight(args)
    return [
        *common,
        f"{kd}.distill_weight={weight}",
        *optimizer,
        *lr,
        f"train.max_epochs={epochs}",
        f"{kd}.freeze_codes={'true' if stage == 'frozen' else 'false'}",
        f"{kd}.distill_epochs=0",
        *args.stage_set,  # last: they override the lines above
    ]


def stage_plan(setting: str, args: argparse.Namespace) -> list[tuple[str, Path]]:
    """``(stage, run_dir)`` in training order; each stage starts from the previous one's run."""
    run_dir = args.runs / f"{setting.replace(':', '-')}-ft{args.finetune_epochs}"
    plan = [("distill", run_dir)]
    if args.joint_epochs > 0:
        run_dir = run_dir.with_name(f"{run_dir.name}-joint{args.joint_epochs}")
        plan.append(("joint", run_dir))
    if args.frozen_epochs > 0:
        run_dir = run_dir.with_name(f"{run_dir.name}-frozen{args.frozen_epochs}")
        plan.append(("frozen", run_dir))
    return plan


def _metrics(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")))


def run_setting(setting: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or read) every stage of ``setting``; the row of the curve."""
    source: Path = args.teacher
    stages = []
    for stage, run_dir in stage_plan(setting, args):
        overrides = stage_overrides(stage, setting, source, args)
        config = build_config(path=args.teacher / "config.yaml", overrides=overrides)
        if not (run_dir / "metrics.json").is_file():
            train_run(config, run_dir)  # an unfinished stage resumes from its checkpoint
        elif differing := config_differences(run_dir, config):
            # a finished stage is read, not re-trained: only if it is the run asked for
            raise UserError(
                f"{run_dir} is a finished {stage} run with other options "
                f"({', '.join(differing)}): use another --runs, or move it away"
            )
        stages.append({"stage": stage, "run": str(run_dir), **_stage_result(_metrics(run_dir))})
        source = run_dir
    return _row(setting, _metrics(stage_plan(setting, args)[0][1]), stages)


def _stage_result(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "valid_mrr": metrics["valid"]["mrr"],
        "test_mrr": metrics["test"]["mrr"],
        "test_hits@1": metrics["test"]["hits@1"],
        "test_hits@10": metrics["test"]["hits@10"],
        "epochs": metrics["timing"]["epochs"],
    }


def _row(setting: str, first: dict[str, Any], stages: list[dict[str, Any]]) -> dict[str, Any]:
    """One setting: compression (the same in every stage), the final stage's metrics under the
    keys of the single-stage rows, ``reconstruction_test_mrr`` (the distill run without task
    training, None when it fine-tuned) and every stage's metrics under ``stages``."""
    comp = first["compression"]
    table = comp["tables"]["entities"]
    final = stages[-1]
    distill_only = first["timing"]["epochs"] == 0
    return {
        "setting": setting,
        "K": table["K"],
        "D": table["D"],
        "ratio": comp["ratio"],
        "model_ratio": comp["model_ratio"],
        "embedding_bits_compressed": comp["embedding_bits_compressed"],
        "distill_relative_error": table.get("distill_relative_error"),
        **{k: v for k, v in final.items() if k not in ("stage", "run")},
        "reconstruction_test_mrr": first["test"]["mrr"] if distill_only else None,
        "stages": stages,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring).

    Raises:
        SystemExit: ``--finetune-epochs`` together with ``--joint-epochs`` or
            ``--frozen-epochs`` (the staged chain starts from a reconstruction-only run).
    """
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="trained KGE run directory (not with --plot-only)",
    )
    parser.add_argument("--runs", type=Path, default=Path("runs/kd-kge"))
    parser.add_argument("--settings", nargs="+", default=None, help="K:D:code_dim[:composition]")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None)
    parser.add_argument("--distill-epochs", type=int, default=100)
    parser.add_argument("--distill-weight", type=float, default=1.0)
    parser.add_argument(
        "--joint-distill-weight",
        type=float,
        default=None,
        help="distillation penalty weight in stages joint/frozen (None: --distill-weight)",
    )
    parser.add_argument("--finetune-epochs", type=int, default=0)
    parser.add_argument("--joint-epochs", type=int, default=0)
    parser.add_argument("--frozen-epochs", type=int, default=0)
    parser.add_argument(
        "--lr", type=float, default=None, help="stages joint/frozen (None: teacher's)"
    )
    parser.add_argument(
        "--optimizer",
        choices=("adam", "adagrad"),
        default=None,
        help="stages joint/frozen (None: teacher's)",
    )
    parser.add_argument(
        "--stage-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override of stages joint/frozen, after the script's own (repeatable; "
        "e.g. entity_embedding.dropout=0.3: the stages otherwise train without entity dropout)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument("--png", type=Path, default=None, help="compression vs MRR figure")
    parser.add_argument(
        "--plot-only",
        action="store_true",
        help="draw --png from --out as it stands (a partial curve too), train nothing",
    )
    args = parser.parse_args(argv)
    if args.plot_only and (args.out is None or args.png is None or not args.out.is_file()):
        parser.error("--plot-only draws --png from an existing --out: give both")
    if not args.plot_only and args.teacher is None:
        parser.error("--teacher is required (the trained KGE run directory to compress)")
    if args.finetune_epochs and (args.joint_epochs or args.frozen_epochs):
        parser.error("--finetune-epochs is the single-run variant; with stages use --frozen-epochs")
    if args.settings is None:
        args.settings = list(PRESETS[args.preset] if args.preset else DEFAULT_SETTINGS)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the curve; returns (and prints, last line) the JSON result."""
    args = parse_args(argv)
    if args.plot_only:
        drawn: dict[str, Any] = json.loads(args.out.read_text(encoding="utf-8"))
        if not drawn.get("rows"):
            raise UserError(f"{args.out} has no finished setting to draw")
        _plot(drawn, args)
        return drawn
    teacher = _metrics(args.teacher)
    rows: list[dict[str, Any]] = []
    result = {
        "teacher": str(args.teacher),
        "teacher_test_mrr": teacher["test"]["mrr"],
        "teacher_valid_mrr": teacher["valid"]["mrr"],
        "distill_epochs": args.distill_epochs,
        "finetune_epochs": args.finetune_epochs,
        "joint_epochs": args.joint_epochs,
        "frozen_epochs": args.frozen_epochs,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "distill_weight": args.distill_weight,
        "joint_distill_weight": task_distill_weight(args),
        "stage_set": list(args.stage_set),
        "settings": list(args.settings),
        "complete": False,
        "rows": rows,
    }
    # a rerun onto a finished curve rewrites it only once complete again (a failing rerun
    # must not replace it with a partial one)
    keep = args.out is not None and args.out.is_file() and _is_complete(args.out)
    earlier = _reusable_rows(args.out, result)
    for setting in args.settings:
        if setting in earlier and not any(d.exists() for _, d in stage_plan(setting, args)):
            print(f"{setting}: its run directories are absent; row read from {args.out}",
                  file=sys.stderr)  # fmt: skip
            rows.append(earlier[setting])
        else:
            rows.append(run_setting(setting, args))
        print(json.dumps(rows[-1]), flush=True)
        result["complete"] = len(rows) == len(args.settings)
        if args.out and (result["complete"] or not keep):  # each finished setting lands at once
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            tmp.replace(args.out)
    if args.png:
        _plot(result, args)
    print(json.dumps(result))
    return result


def _reusable_rows(out: Path | None, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The rows of an earlier ``--out`` by setting, if it was written with this run's teacher
    metrics and options (:data:`SAME_RUN_KEYS`); else none (stderr names the differences)."""
    if out is None or not out.is_file():
        return {}
    try:
        earlier = json.loads(out.read_text(encoding="utf-8"))
        differing = [k for k in SAME_RUN_KEYS if earlier.get(k, _KEY_DEFAULTS.get(k)) != result[k]]
        rows = {row["setting"]: row for row in earlier["rows"]}
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
        print(f"{out} is not a curve JSON: none of its rows is reused", file=sys.stderr)
        return {}
    if differing:
        print(f"{out} was written with another {', '.join(differing)}: none of its rows is "
              "reused", file=sys.stderr)  # fmt: skip
        return {}
    return rows


def _is_complete(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text(encoding="utf-8")).get("complete"))
    except (json.JSONDecodeError, AttributeError):
        return False


def _plot(result: dict[str, Any], args: argparse.Namespace) -> None:
    """The figure of ``result`` (this run's, or ``--out`` read back: its own stage epochs, so
    that ``--plot-only`` needs no stage options; rows written before the stages existed lack
    ``stages`` and ``reconstruction_test_mrr``)."""
    rows = result["rows"]
    staged = bool(result.get("joint_epochs") or result.get("frozen_epochs"))
    points = [(r["ratio"], r["test_mrr"], r["setting"]) for r in rows]
    recon = [
        (r["ratio"], r["reconstruction_test_mrr"], r["setting"])
        for r in rows
        if r.get("reconstruction_test_mrr") is not None
    ]
    name = "+".join(s["stage"] for s in rows[0].get("stages", [])) if rows else ""
    settings = result.get("settings", rows)
    part = "" if len(rows) == len(settings) else f", {len(rows)} of {len(settings)} settings"
    plot_compression_curve(
        points,
        baseline=result["teacher_test_mrr"],
        out=args.png,
        ylabel="test MRR (filtered)",
        title=f"KD codes on the entity table\n({Path(result['teacher']).name}{part})",
        series=f"end to end ({name})" if staged else "KD codes",
        extra={"reconstruction only": recon} if staged and recon else None,
        xticks=sorted({round(p[0], 1) for p in points}),
    )


if __name__ == "__main__":
    main()
