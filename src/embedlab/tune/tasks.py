"""Which task a base config belongs to, and what a trial optimizes for it.

The objective is the task's selection metric on the validation split, from the trial's
``metrics.json`` (best checkpoint); intermediate values for pruning come from the ``valid``
events of its ``trace.jsonl`` (the same key).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from embedlab.config.io import build_typed_config
from embedlab.errors import UserError
from embedlab.gcn.config import GcnConfig
from embedlab.kge.config import KgeConfig
from embedlab.lm.config import LmConfig
from embedlab.nmt.config import NmtConfig
from embedlab.recsys.config import MfConfig


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    name: str  # the CLI group: embedlab <name> train
    metric: str  # key of metrics.json["valid"] and of the trace's valid events
    direction: Literal["maximize", "minimize"]
    config_class: type[BaseModel]


TASKS: dict[str, TaskSpec] = {
    "kge": TaskSpec(name="kge", metric="mrr", direction="maximize", config_class=KgeConfig),
    "mf": TaskSpec(name="mf", metric="rmse", direction="minimize", config_class=MfConfig),
    "lm": TaskSpec(name="lm", metric="perplexity", direction="minimize", config_class=LmConfig),
    # valid NLL per target token: in every valid event and in metrics.json["valid"]; the valid
    # events' BLEU is greedy on a subset (bleu_greedy), too noisy to prune on
    "nmt": TaskSpec(name="nmt", metric="loss", direction="minimize", config_class=NmtConfig),
    # valid node accuracy of the run's selected checkpoint (eval.metric picks it: valid loss by
    # default, as Kipf & Welling); every valid event has it
    "gcn": TaskSpec(name="gcn", metric="accuracy", direction="maximize", config_class=GcnConfig),
}


def build(spec: TaskSpec, base: Path, overrides: list[str]) -> Any:
    """The validated config of ``base`` with ``overrides`` (raises UserError naming the key)."""
    return build_typed_config(spec.config_class, path=base, overrides=overrides)


def detect(base: Path, task: str | None) -> TaskSpec:
    """The task of ``base``: ``task`` if given, else the one task whose schema accepts it.

    Raises:
        UserError: unknown task, a config no task accepts (with each task's complaint), or one
            that several accept (pass ``--task``).
    """
    if task is not None:
        if task not in TASKS:
            raise UserError(f"--task {task!r}: choose one of {', '.join(TASKS)}")
        build(TASKS[task], base, [])
        return TASKS[task]
    fits, errors = [], []
    for spec in TASKS.values():
        try:
            build(spec, base, [])
        except UserError as err:
            errors.append(f"as {spec.name}: {str(err).splitlines()[0]}")
            continue
        fits.append(spec)
    if len(fits) == 1:
        return fits[0]
    if not fits:
        raise UserError(f"{base} is not a valid config of any task:\n  " + "\n  ".join(errors))
    raise UserError(f"{base} fits {', '.join(s.name for s in fits)}: pass --task")
