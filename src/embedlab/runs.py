"""Any trained run directory, read back as its task's predictor (:func:`load_run`)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from embedlab.errors import UserError
from embedlab.kge.predict import KgePredictor
from embedlab.lm.predictor import LmPredictor
from embedlab.nmt.translator import NmtTranslator
from embedlab.recsys.recommend import MfPredictor
from embedlab.training.run_dir import RunPaths

Predictor = KgePredictor | MfPredictor | LmPredictor | NmtTranslator

# a key only that task's config has -> the task
_TASK_KEYS = {
    "entity_embedding": "kge",
    "user_embedding": "mf",
    "token_embedding": "lm",
    "source_embedding": "nmt",
}


def run_task(run_dir: Path) -> str:
    """``"kge"``, ``"mf"``, ``"lm"`` or ``"nmt"``: the task of the run directory's ``config.yaml``.

    Raises:
        UserError: no ``config.yaml``, or one of no known task.
    """
    path = RunPaths(Path(run_dir)).config
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.yaml)")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from None
    tasks = {task for key, task in _TASK_KEYS.items() if isinstance(config, dict) and key in config}
    if len(tasks) != 1:
        raise UserError(f"{path}: not the config of a KGE, MF, LM or NMT run")
    return tasks.pop()


def load_run(run_dir: str | Path, *, device: torch.device | str = "cpu") -> Predictor:
    """The predictor of a trained run directory, from its best (else last) checkpoint.

    - KGE: :class:`~embedlab.kge.predict.KgePredictor` (``predict_tails``, ``predict_heads``,
      ``predict``, ``score``, ``embeddings``), on ``device``;
    - MF: :class:`~embedlab.recsys.recommend.MfPredictor` (``recommend``, ``fold_in``,
      ``predict``, ``embeddings``), on CPU;
    - LM: :class:`~embedlab.lm.predictor.LmPredictor` (``embeddings``), on CPU;
    - NMT: :class:`~embedlab.nmt.translator.NmtTranslator` (``translate``), on ``device``.

    Raises:
        UserError: not a run directory, no checkpoint yet, a dataset that no longer fits it.
    """
    run_dir = Path(run_dir)
    task = run_task(run_dir)
    if task == "kge":
        return KgePredictor.from_run(run_dir, device=device)
    if task == "mf":
        return MfPredictor.from_run(run_dir)
    if task == "nmt":
        return NmtTranslator.from_run(run_dir, device=device)
    return LmPredictor.from_run(run_dir)
