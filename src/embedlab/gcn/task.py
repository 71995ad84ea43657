"""Semi-supervised node classification as a task of the one loop: full batch (one step per
epoch over the whole graph); validation is the valid cross-entropy and accuracy, either of which
selects the model (``eval.metric``; loss: mode min, accuracy: mode max)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.nn import functional as F

from embedlab.datasets.planetoid import PlanetoidGraph
from embedlab.distributed import World
from embedlab.gcn.config import GcnConfig
from embedlab.gcn.model import Gcn
from embedlab.training.loop import Mode, Step
from embedlab.training.optim import build_optimizer

FullBatch = str  # the one batch of an epoch: the name of the split it trains on


def model_inputs(
    graph: PlanetoidGraph, config: GcnConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(Â (N, N) sparse, features (N, F) or None)`` on ``device``: the features, row-normalized
    when ``model.normalize_features`` (Kipf's ``preprocess_features``: each row divided by its
    sum, all-zero rows kept), are ``None`` where ``model.features`` is ``embedding``."""
    adjacency = graph.adjacency.to(device)
    if config.model.features == "embedding":
        return adjacency, None
    features = graph.features
    if config.model.normalize_features:
        features = features / features.sum(1, keepdim=True).clamp_min(1e-12)
    return adjacency, features.to(device)


def cross_entropy_and_accuracy(
    logits: torch.Tensor, labels: torch.Tensor, nodes: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Mean ``-log softmax(logits)[label]`` over ``nodes (n,)`` (eq. 3 divided by n) and the
    fraction whose arg-max is the label; ``logits (N, C)``, ``labels (N,)``."""
    picked = logits[nodes]  # (n, C)
    target = labels[nodes]  # (n,)
    loss = F.cross_entropy(picked, target)
    accuracy = float((picked.argmax(1) == target).float().mean()) if nodes.numel() else 0.0
    return loss, accuracy


class GcnTask:
    """The loop's :class:`~embedlab.training.loop.Task` for a GCN on one graph.

    Each epoch is one batch (the whole graph, full-batch gradient descent as Kipf & Welling):
    the step's loss is the training nodes' cross-entropy plus :meth:`Gcn.penalty`; its logged
    value is the cross-entropy alone. Adam at ``train.lr``. One process only.

    Args:
        model: the GCN, on ``device``. graph: the dataset (CPU tensors, moved here).
        config: the run config. device: where the model lives.
    """

    def __init__(
        self, *, model: Gcn, graph: PlanetoidGraph, config: GcnConfig, device: torch.device
    ) -> None:
        self.model, self.config = model, config
        self.metric = config.eval.metric  # loss: Kipf's early stopping on the valid loss
        self.mode: Mode = "min" if self.metric == "loss" else "max"
        self.adjacency, self.features = model_inputs(graph, config, device)
        self.labels = graph.labels.to(device)  # (N,)
        self.splits = {name: ids.to(device) for name, ids in graph.splits.items()}

    def build_optimizer(self) -> torch.optim.Optimizer:
        """Adam over every parameter at ``train.lr`` (Kipf & Welling)."""
        return build_optimizer(self.model.parameters(), name="adam", lr=self.config.train.lr)

    def build_scheduler(self, optimizer: torch.optim.Optimizer | None) -> None:
        """No learning-rate schedule (``None``)."""
        return None

    def num_batches(self) -> int:
        """One: the whole graph."""
        return 1

    def batches(self, generator: torch.Generator) -> Iterator[FullBatch]:
        """The epoch's one batch, ``"train"`` (nothing is shuffled)."""
        yield "train"

    def local_batch(self, batch: FullBatch, world: World) -> tuple[FullBatch, float]:
        """``(batch, 1.0)``: one process."""
        return batch, 1.0

    def global_penalty(self, batch: FullBatch) -> None:
        """``None``: :meth:`train_step` includes the penalty (one process)."""
        return None

    def train_step(self, batch: FullBatch) -> Step:
        """Forward over all N nodes, loss on the ``batch`` split's nodes (see the class)."""
        nodes = self.splits[batch]
        logits = self.model(self.adjacency, self.features)  # (N, C)
        loss, _ = cross_entropy_and_accuracy(logits, self.labels, nodes)
        penalty = self.model.penalty(self.config.train.weight_decay)
        return Step(loss=loss + penalty, rows=int(nodes.numel()), value=float(loss.detach()))

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, Any]:
        """``{"accuracy", "loss" (mean cross-entropy, nats), "nodes"}`` of the model in eval
        mode (no dropout; KD tables use their hard codes) on ``split``'s nodes."""
        self.model.eval()
        logits = self.model(self.adjacency, self.features)
        nodes = self.splits[split]
        loss, accuracy = cross_entropy_and_accuracy(logits, self.labels, nodes)
        return {"accuracy": accuracy, "loss": float(loss), "nodes": int(nodes.numel())}

    def validate(self) -> dict[str, Any]:
        """:meth:`evaluate` on ``valid``."""
        return self.evaluate("valid")
