"""Distillation stage of PDG: fit a KD layer to its pre-trained table before task training.

Paper 003 (pre-trained distillation guidance): the composed rows ``v_i`` are pulled towards the
pre-trained rows ``u_i``. This stage minimizes ``mean_i ||v_i - u_i||^2`` (+ the entropy term)
over all rows, in random mini-batches of rows, with Adam; the task training that follows keeps the
same term as a penalty (``distill_weight``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm

from embedlab.embeddings.kd import KdEmbedding
from embedlab.errors import UserError


class EventLog(Protocol):
    """Where the stage reports its epochs and a resumed run finds them: a run's trace
    (:class:`embedlab.training.trace.Trace`, which the embedding layers do not import)."""

    def write(self, event: str, **fields: Any) -> None: ...

    def read(self) -> list[dict[str, Any]]: ...


@torch.no_grad()
def reconstruction_error(layer: KdEmbedding) -> float:
    """Relative squared error of the hard-code rows: ``||V - U||_F^2 / ||U||_F^2`` (eval mode)."""
    was_training = layer.training
    layer.eval()
    composed = layer.lookup_all()
    layer.train(was_training)
    teacher = layer.teacher
    return float((composed - teacher).pow(2).sum() / teacher.pow(2).sum().clamp_min(1e-30))


def distill_to_teacher(
    layer: KdEmbedding,
    *,
    generator: torch.Generator,
    log: Callable[[int, float, float], None] | None = None,
) -> float:
    """Run ``layer.kd.distill_epochs`` epochs of reconstruction; returns the final relative error.

    ``log(epoch, mean_loss, relative_error)`` is called after every epoch (e.g. the run's trace).

    Raises:
        UserError: the layer has no pre-trained table (``kd.guidance`` is not ``pdg``).
    """
    kd = layer.kd
    if kd.guidance != "pdg":
        raise UserError("kd.distill_epochs needs kd.guidance=pdg and a pre-trained table")
    params = [p for n, p in layer.named_parameters() if not n.startswith("full")]
    optimizer = torch.optim.Adam(params, lr=kd.distill_lr)
    layer.train()
    error = reconstruction_error(layer)
    device = layer.codebook.device
    for epoch in tqdm(range(1, kd.distill_epochs + 1), desc="distill", unit="epoch", disable=None):
        order = torch.randperm(layer.num_rows, generator=generator).to(device)
        total, steps = 0.0, 0
        for rows in order.split(kd.distill_batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = (
                (layer.compose_codes(rows, relax=True) - layer.teacher[rows]).pow(2).sum(1).mean()
            )
            if kd.entropy_weight > 0:
                loss = loss + kd.entropy_weight * layer.entropy(rows)
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
        layer.clear_caches()  # the codes moved (also for an optimizer that bumps no version)
        error = reconstruction_error(layer)
        if log is not None:
            log(epoch, total / max(1, steps), error)
    return error


def kd_layers(model: nn.Module) -> dict[str, KdEmbedding]:
    """The KD-code tables of ``model`` by module name (``entities``, ``token_embedding``, ...;
    a table shared under two names is listed once, as in :func:`compression_report`)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, KdEmbedding)}


_STRUCTURE = (
    "K",
    "D",
    "code_dim",
    "composition",
    "reduce",
    "hidden",
    "shared_codebook",
    "guidance",
    "autoencode",
)
"""The :class:`~embedlab.embeddings.config.KdConfig` fields that fix what a KD table's state
means (``reduce: sum`` and ``mean`` have the same shapes but not the same rows)."""


def same_kd_structure(layer: KdEmbedding, source: nn.Module) -> bool:
    """Whether ``source`` is a KD table whose full state ``layer`` can take over unchanged:
    the same N and d, the same :data:`_STRUCTURE` fields of ``kd`` and the same state-dict keys
    and shapes (training settings such as ``freeze_codes`` or ``distill_epochs`` may differ)."""
    if not isinstance(source, KdEmbedding):
        return False
    if (layer.num_rows, layer.dim) != (source.num_rows, source.dim):
        return False
    if any(getattr(layer.kd, f) != getattr(source.kd, f) for f in _STRUCTURE):
        return False
    mine, theirs = layer.state_dict(), source.state_dict()
    return mine.keys() == theirs.keys() and all(mine[k].shape == theirs[k].shape for k in mine)


def require_teacher_run(pdg: list[str], init_from: str | None) -> None:
    """Refuse KD tables with ``guidance: pdg`` (named in ``pdg``) when no run to distill from
    is given.

    Raises:
        UserError: a pdg table and no ``train.init_from``.
    """
    if pdg and not init_from:
        raise UserError(
            f"kd.guidance=pdg on {', '.join(pdg)} needs a trained run to distill from: "
            "--set train.init_from=RUN_DIR"
        )


def distill_stage(
    model: nn.Module,
    *,
    seed: int,
    trace: EventLog,
    resuming: bool = False,
) -> dict[str, float]:
    """The PDG stage of every KD table of ``model`` with ``kd.distill_epochs > 0``:
    :func:`distill_to_teacher` with a generator seeded by ``seed``, one ``distill`` trace event
    per epoch; returns each table's final relative reconstruction error.

    ``resuming``: the run resumes from a checkpoint (its tables come from there, distilled by the
    process that started the run): nothing is trained and each table's error is that of its last
    ``distill`` event in ``trace.read()`` (tables without one are left out)."""
    errors: dict[str, float] = {}
    if resuming:
        for event in trace.read():
            if event.get("event") == "distill" and "relative_error" in event:
                errors[str(event["table"])] = float(event["relative_error"])
        return errors
    for name, layer in kd_layers(model).items():
        if layer.kd.distill_epochs == 0:
            continue

        def log(epoch: int, loss: float, error: float, table: str = name) -> None:
            trace.write("distill", table=table, epoch=epoch, loss=loss, relative_error=error)

        generator = torch.Generator().manual_seed(seed)
        errors[name] = distill_to_teacher(layer, generator=generator, log=log)
    return errors
