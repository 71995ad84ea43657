"""``embedlab tune``: an Optuna study whose trials are normal run directories.

Resumable: the study lives in ``storage`` (e.g. ``sqlite:///study.db``); re-running the same
command continues it until ``trials`` trials are finished (complete, pruned, or failed with an
error). A trial interrupted with the previous invocation (still marked running) is marked failed
and queued again with the same values and run directory, which resumes from its last checkpoint.
Run one ``embedlab tune`` per study at a time (``jobs`` runs trials in parallel within it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedlab.errors import UserError
from embedlab.tune.space import grid, load_space, settings, suggest
from embedlab.tune.summary import override, write_summary
from embedlab.tune.tasks import build, detect
from embedlab.tune.trial import TrialFailed, TrialPruned, TrialRun, run_trial


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    base: Path  # the base config YAML
    space: Path  # the search-space YAML
    trials: int  # finished trials wanted in the study
    storage: str  # Optuna storage URL
    out: Path  # trial run directories, summary.json, best.yaml, history.png
    jobs: int = 1
    study_name: str | None = None  # default: the name of ``out``
    task: str | None = None  # default: detected from the base config
    sampler: str = "tpe"  # tpe | random | grid
    pruner: str = "median"  # median | none
    seed: int = 0  # the sampler's seed
    overrides: list[str] = field(default_factory=list)  # --set applied to every trial

    def __post_init__(self) -> None:
        if self.sampler not in ("tpe", "random", "grid") or self.pruner not in ("median", "none"):
            raise UserError(
                f"sampler tpe|random|grid and pruner median|none, got {self.sampler}/{self.pruner}"
            )


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as err:
        raise UserError("embedlab tune needs Optuna: pip install 'embedlab[tune]'") from err
    return optuna


def _sampler(optuna: Any, config: StudyConfig, space: dict[str, Any]) -> Any:
    if config.sampler == "grid":
        return optuna.samplers.GridSampler(grid(space), seed=config.seed)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=config.seed)
    return optuna.samplers.TPESampler(seed=config.seed)


def _requeue_interrupted(optuna: Any, study: Any) -> None:
    """Trials left running by a killed invocation: failed (without an ``error``, so they do not
    count as finished), and queued again to resume in their run directory."""
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"resume_dir": trial.user_attrs["run_dir"]})


def _finished(optuna: Any, study: Any) -> int:
    state = optuna.trial.TrialState
    return sum(
        t.state in (state.COMPLETE, state.PRUNED)
        or (t.state == state.FAIL and "error" in t.user_attrs)
        for t in study.get_trials(deepcopy=False)
    )


def run_study(
    config: StudyConfig, *, command_prefix: Sequence[str] = (sys.executable, "-m", "embedlab")
) -> dict[str, Any]:
    """Create or continue the study, run the missing trials, write the summary files.

    Each trial runs ``command_prefix + [task, "train", "--config", ...]`` (tests pass a fake
    trainer).

    Raises:
        UserError: a missing Optuna, bad base config / space, or a study created with another
            task's direction.
    """
    optuna = _optuna()
    spec = detect(config.base, config.task)
    build(spec, config.base, config.overrides)  # the fixed overrides must validate alone
    space = load_space(config.space)
    config.out.mkdir(parents=True, exist_ok=True)
    name = config.study_name or config.out.resolve().name
    try:
        study = optuna.create_study(
            study_name=name, storage=config.storage, load_if_exists=True,
            direction=spec.direction, sampler=_sampler(optuna, config, space),
            pruner=optuna.pruners.MedianPruner() if config.pruner == "median"
            else optuna.pruners.NopPruner(),
        )  # fmt: skip
    except ValueError as err:  # e.g. an existing study with the other direction
        raise UserError(f"study {name!r} in {config.storage}: {err}") from None
    _requeue_interrupted(optuna, study)
    remaining = config.trials - _finished(optuna, study)
    if remaining > 0:

        def objective(trial: Any) -> float:
            run_dir = Path(
                trial.user_attrs.get("resume_dir") or config.out / f"trial-{trial.number:04d}"
            )
            trial.set_user_attr("run_dir", str(run_dir))
            values = suggest(trial, space)
            chosen = settings(space, values)
            overrides = config.overrides + [override(k, v) for k, v in chosen.items()]
            try:
                build(spec, config.base, overrides)
            except UserError as err:  # a combination the config refuses: a failed trial
                trial.set_user_attr("error", str(err))
                raise TrialFailed(str(err)) from None
            command = [*command_prefix, spec.name, "train", "--config", str(config.base),
                       "--out", str(run_dir), "--no-progress"]  # fmt: skip
            for item in overrides:
                command += ["--set", item]

            def report(value: float, epoch: int) -> bool:
                trial.report(value, epoch)
                return bool(trial.should_prune())

            run = TrialRun(command=command, run_dir=run_dir, metric=spec.metric,
                           log=config.out / f"trial-{trial.number:04d}.log")  # fmt: skip
            try:
                return run_trial(run, report)
            except TrialPruned as err:
                raise optuna.TrialPruned(str(err)) from None
            except TrialFailed as err:
                trial.set_user_attr("error", str(err))
                raise

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(objective, n_trials=remaining, n_jobs=config.jobs, catch=(TrialFailed,))
    return write_summary(
        study, spec=spec, space=space, base=config.base, out=config.out,
        overrides=config.overrides,
    )  # fmt: skip
