"""What a study leaves in its output directory: ``summary.json`` (every trial: state, value,
params, run directory; the best trial), ``best.yaml`` (the base config with the best values,
ready for ``embedlab <task> train --config``) and ``history.png`` (values by trial with the best
so far; pruned trials at their last reported value)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from embedlab.config.io import apply_overrides, load_yaml
from embedlab.tune.space import Space, settings
from embedlab.tune.tasks import TaskSpec


def override(key: str, value: Any) -> str:
    """``key=value`` for ``--set``: the value in JSON, which YAML reads back unchanged."""
    return f"{key}={json.dumps(value)}"


def _trial_row(trial: Any, space: Space) -> dict[str, Any]:
    last = max(trial.intermediate_values) if trial.intermediate_values else None
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value,
        "last_reported": None if last is None else {"epoch": last, "value": trial.intermediate_values[last]},
        "params": trial.params,
        "settings": settings(space, trial.params),
        "run_dir": trial.user_attrs.get("run_dir"),
        "error": trial.user_attrs.get("error"),
        "seconds": trial.duration.total_seconds() if trial.duration else None,
    }  # fmt: skip


def write_summary(
    study: Any, *, spec: TaskSpec, space: Space, base: Path, out: Path, overrides: list[str]
) -> dict[str, Any]:
    """Write the three files; returns the summary dict. ``best.yaml`` is the base config with
    the fixed ``overrides`` (``--set``) and the best trial's values: the config that trial ran."""
    trials = [_trial_row(t, space) for t in study.get_trials(deepcopy=False)]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    counts: dict[str, int] = {}
    for t in trials:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    summary: dict[str, Any] = {
        "study": study.study_name, "task": spec.name, "metric": f"valid {spec.metric}",
        "direction": spec.direction, "base_config": str(base), "counts": counts,
        "best": None, "trials": trials,
    }  # fmt: skip
    if complete:
        best = study.best_trial
        chosen = settings(space, best.params)
        summary["best"] = {"number": best.number, "value": best.value, "params": best.params,
                           "settings": chosen, "run_dir": best.user_attrs.get("run_dir")}  # fmt: skip
        values = [override(k, v) for k, v in chosen.items()]
        config = apply_overrides(load_yaml(base), [*overrides, *values])
        header = (f"# embedlab tune: best of study {study.study_name!r} (trial {best.number}, "
                  f"valid {spec.metric} {best.value:.6g}); base config {base}\n")  # fmt: skip
        (out / "best.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _plot(trials, spec, out / "history.png")
    return summary


def _plot(trials: list[dict[str, Any]], spec: TaskSpec, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    done = [(t["number"], t["value"]) for t in trials if t["state"] == "COMPLETE"]
    pruned = [(t["number"], t["last_reported"]["value"]) for t in trials
              if t["state"] == "PRUNED" and t["last_reported"]]  # fmt: skip
    if done:
        ax.plot(*zip(*done, strict=True), "o", label="complete")
        best, line = None, []
        for number, value in done:
            better = best is None or (
                value > best if spec.direction == "maximize" else value < best
            )
            best = value if better else best
            line.append((number, best))
        ax.step(*zip(*line, strict=True), where="post", label="best so far")
    if pruned:
        ax.plot(*zip(*pruned, strict=True), "x", color="gray", label="pruned (last value)")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"valid {spec.metric}")
    if done or pruned:  # all failed: an empty plot, no legend
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
