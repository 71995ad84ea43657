"""The registry of KGE training types (``train.type``; LibKGE's training jobs) and
:func:`build_task`.

Above :mod:`embedlab.kge.task` and the three types, which import ``task.py`` for
:class:`~embedlab.kge.task.KgeTask`: registering them here keeps every import at module level.
"""

from __future__ import annotations

from embedlab.datasets.kg import KgDataset
from embedlab.distributed import SINGLE, World
from embedlab.evaluation.filtering import KnownAnswers
from embedlab.kge.config import KgeConfig
from embedlab.kge.kvs_all import KvsAllTask
from embedlab.kge.model import KgeModel
from embedlab.kge.negative_sampling import NegativeSamplingTask
from embedlab.kge.one_vs_all import OneVsAllTask
from embedlab.kge.task import KgeTask

TRAINING_TYPES: dict[str, type[KgeTask]] = {
    "1vsAll": OneVsAllTask,
    "KvsAll": KvsAllTask,
    "negative_sampling": NegativeSamplingTask,
}


def build_task(
    *,
    model: KgeModel,
    dataset: KgDataset,
    known: KnownAnswers,
    config: KgeConfig,
    world: World = SINGLE,
) -> KgeTask:
    """The task of ``config.train.type`` (1vsAll, KvsAll or negative_sampling) on rank
    ``world.rank`` of a data-parallel job (one process by default)."""
    return TRAINING_TYPES[config.train.type](
        model=model, dataset=dataset, known=known, config=config, world=world
    )
