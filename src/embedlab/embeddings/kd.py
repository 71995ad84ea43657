"""KD codes: an embedding table whose rows are composed from K-way D-dimensional discrete codes.

Chen, Min, Sun, "Learning K-way D-dimensional Discrete Codes for Compact Embedding
Representations", ICML 2018 (paper 003, the supplement; table 1 lists the optimization tricks
implemented here). Row ``i`` has codes ``c_i in {0..K-1}^D``; its embedding is
``v_i = f(W^1[c_i^1], ..., W^D[c_i^D])`` (:mod:`embedlab.embeddings.kd_compose`).

Training (end to end, any task): free code logits ``pi: (N, D, K)`` (or, with PDG
auto-encoding, ``pi_i = encoder(u_i)`` of a pre-trained row ``u_i``) are relaxed to
``o_hat = softmax(pi / tau)`` (CR) or Gumbel-softmax; with straight-through estimation (STE) the
forward pass uses the hard one-hot ``argmax`` and the gradient of ``o_hat``. Evaluation mode
always uses hard codes, so what is evaluated is what :meth:`KdEmbedding.export` ships.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.graph import RowGraph
from embedlab.embeddings.init import initialize_
from embedlab.embeddings.kd_compose import (
    POOLED_COMPOSITIONS,
    Composition,
    build_composition,
    compose_hard,
    relaxed_code_sum,
)
from embedlab.embeddings.template import EmbeddingLayer, weighted_lp
from embedlab.errors import UserError


class KdEmbedding(EmbeddingLayer):
    """A KD-code embedding layer of N rows and width d (``config.kind == "kd"``).

    Args:
        num_rows: N. dim: d. config: ``config.kd`` (:class:`~embedlab.config.KdConfig`), SSE,
            dropout, regularization.
        graph: for SSE-Graph. teacher: pre-trained table ``u: (N, d)`` for ``guidance: pdg``
            (may be omitted when a checkpoint will be loaded: it is a buffer of the layer).

    Parameters: ``logits (N, D, K)`` (absent with auto-encoding: ``encoder``), ``codebook
    (D or 1, K, d')``, the composition; ``full (N, d)`` with online guidance.

    ``lookup(indices)``: ``S -> S + (d,)``; ``codes()``: the hard codes ``(N, D)`` (int64);
    ``penalty(indices)``: entropy + distillation + Lp on the composed rows (a scalar).

    Raises:
        UserError: ``guidance: pdg`` with a teacher of another shape; ``autoencode`` without
            ``guidance: pdg``.
    """

    teacher: torch.Tensor
    temperature: torch.Tensor
    encoder: nn.Module
    compose: Composition

    def __init__(
        self,
        *,
        num_rows: int,
        dim: int,
        config: EmbeddingConfig,
        graph: RowGraph | None = None,
        teacher: torch.Tensor | None = None,
    ) -> None:
        super().__init__(num_rows=num_rows, config=config, graph=graph)
        kd = config.kd
        self.kd = kd
        self.dim = dim
        self._num_rows = num_rows
        if kd.autoencode and kd.guidance != "pdg":
            raise UserError("kd.autoencode needs kd.guidance=pdg (the encoder reads u_i)")
        if kd.guidance == "pdg":
            if teacher is not None and tuple(teacher.shape) != (num_rows, dim):
                raise UserError(
                    f"kd.guidance=pdg: the pre-trained table has shape {tuple(teacher.shape)}, "
                    f"this layer needs ({num_rows}, {dim})"
                )
            init = torch.zeros(num_rows, dim) if teacher is None else teacher.detach().float()
            self.register_buffer("teacher", init.clone())
        if kd.autoencode:
            hidden = max(kd.code_dim, dim)
            self.encoder = nn.Sequential(
                nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, kd.D * kd.K)
            )
        else:
            self.logits = nn.Parameter(torch.randn(num_rows, kd.D, kd.K) * kd.logit_init_scale)
        positions = 1 if kd.shared_codebook else kd.D
        self.codebook = nn.Parameter(torch.randn(positions, kd.K, kd.code_dim) / math.sqrt(kd.D))
        self.compose = build_composition(kd, dim)
        if kd.guidance == "online":
            self.full = nn.Parameter(torch.empty(num_rows, dim))
            initialize_(self.full, config.init)
        self.register_buffer("temperature", torch.tensor(kd.temperature))
        self._eval_cache: torch.Tensor | None = None
        # (versions of the code sources, hard codes (N, D)) with freeze_codes: _hard_codes
        self._codes_cache: tuple[list[tuple[int, int, int]], torch.Tensor] | None = None
        # (rows, code logits, composed rows) of the last training lookup, for its penalty
        self._step_cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @property
    def num_rows(self) -> int:
        return self._num_rows

    # -- schedule -------------------------------------------------------------------------
    def set_progress(self, epoch: float) -> None:
        """Anneal the temperature: ``tau = tau0 (tau1 / tau0)^min(epoch / anneal_epochs, 1)``
        (exponential; fixed when ``temperature_final`` is None). ``epoch`` may be fractional."""
        kd = self.kd
        if kd.temperature_final is None:
            return
        frac = min(max(epoch, 0.0) / kd.anneal_epochs, 1.0)
        tau = kd.temperature * (kd.temperature_final / kd.temperature) ** frac
        self.temperature.fill_(tau)

    # -- codes ----------------------------------------------------------------------------
    def code_logits(self, rows: torch.Tensor) -> torch.Tensor:
        """``pi`` of ``rows: (B,)`` -> ``(B, D, K)``."""
        if self.kd.autoencode:
            return self.encoder(self.teacher[rows]).view(-1, self.kd.D, self.kd.K)
        return self.logits[rows]

    @torch.no_grad()
    def codes(self) -> torch.Tensor:
        """Hard codes of every row, ``(N, D)`` int64 in ``0..K-1`` (argmax of the logits)."""
        rows = torch.arange(self.num_rows, device=self.codebook.device)
        return torch.cat([self.code_logits(chunk).argmax(-1) for chunk in rows.split(65536)])

    def relaxed_codes(self, rows: torch.Tensor) -> torch.Tensor:
        """Training-mode code weights ``(B, D, K)``: tempered softmax or Gumbel-softmax of
        ``pi / tau``, made hard one-hot in value (gradient of the soft weights) with STE."""
        return self._relax(self.code_logits(rows))

    def _soft(self, logits: torch.Tensor) -> torch.Tensor:
        """Tempered softmax (or Gumbel-softmax) of the code logits ``(B, D, K)``."""
        if self.kd.relaxation == "gumbel":
            uniform = torch.rand_like(logits).clamp_(1e-10, 1.0)
            logits = logits - torch.log(-torch.log(uniform))
        return torch.softmax(logits / self.temperature, dim=-1)

    def _relax(self, logits: torch.Tensor) -> torch.Tensor:
        """:meth:`relaxed_codes` of the code logits ``(B, D, K)``."""
        soft = self._soft(logits)
        if not self.kd.straight_through:
            return soft
        hard = F.one_hot(soft.argmax(-1), self.kd.K).to(soft.dtype)
        return hard + (soft - soft.detach())

    def _codebook(self) -> torch.Tensor:
        """``(D, K, d')`` (a shared codebook is expanded, not copied)."""
        return self.codebook.expand(self.kd.D, -1, -1)

    def compose_codes(
        self, rows: torch.Tensor, *, relax: bool | None = None, keep: bool = False
    ) -> torch.Tensor:
        """The KD rows ``v`` of ``rows: (B,)`` -> ``(B, d)`` (no online-guidance gradient path).

        ``relax`` (default: training mode and not ``freeze_codes``) uses the relaxed codes of
        :meth:`relaxed_codes`; otherwise the hard codes (argmax), gathered. ``keep`` (relaxed,
        with autograd): remember the rows, their code logits and ``v`` for :meth:`penalty`.
        """
        if relax is None:
            relax = self.training and not self.kd.freeze_codes
        if relax:
            logits = self.code_logits(rows)  # (B, D, K)
            if isinstance(self.compose, POOLED_COMPOSITIONS):  # no (B, D, d') vectors
                summed = relaxed_code_sum(
                    self._soft(logits), self.codebook, straight_through=self.kd.straight_through
                )
                composed = self.compose.from_sum(summed, self.kd.D)
            else:
                weights = self._relax(logits)
                vectors = torch.einsum("bdk,dke->bde", weights, self._codebook())
                composed = self.compose(vectors)
            if keep and composed.requires_grad:
                self._step_cache = (rows, logits, composed)
                # a backward pass through these rows frees their graph: forget them then
                composed.register_hook(self._forget_step)
            return composed
        return compose_hard(self.compose, self.codebook, self._hard_codes(rows))

    def _code_sources(self) -> list[torch.Tensor]:
        """The tensors the hard codes are computed from (code logits, or encoder + teacher)."""
        if self.kd.autoencode:
            return [*self.encoder.parameters(), self.teacher]
        return [self.logits]

    @torch.no_grad()
    def _hard_codes(self, rows: torch.Tensor) -> torch.Tensor:
        """argmax codes ``(B, D)`` of ``rows: (B,)``. With ``freeze_codes`` they come from a cache
        of all N rows' codes, recomputed when a tensor they depend on was replaced or changed
        in place (data pointer, version counter: an optimizer step, ``load_state_dict``, a
        device move), so a frozen-code stage does not run the encoder over every row at every
        step."""
        if not self.kd.freeze_codes:
            return self.code_logits(rows).argmax(-1)
        key = [(id(t), t.data_ptr(), t._version) for t in self._code_sources()]
        if self._codes_cache is None or self._codes_cache[0] != key:
            dtype = torch.uint8 if self.kd.K <= 256 else torch.int32  # (N, D) kept compact
            self._codes_cache = (key, self.codes().to(dtype))
        return self._codes_cache[1][rows]

    def compose_rows(self, rows: torch.Tensor, *, keep: bool = False) -> torch.Tensor:
        """Composed embeddings of ``rows: (B,)`` -> ``(B, d)``, without SSE or dropout
        (``keep``: see :meth:`compose_codes`)."""
        out = self.compose_codes(rows, keep=keep)
        if self.kd.guidance == "online" and self.training:
            full = self.full[rows]
            out = out + (full - full.detach())  # value: KD row; gradient also to the full row
        return out

    # -- template ----------------------------------------------------------------------------
    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        flat = indices.reshape(-1)
        unique, inverse = torch.unique(flat, return_inverse=True)
        self._step_cache = None
        # a training step's penalty over the same rows reuses the logits and rows computed here
        out = self.compose_rows(unique, keep=True)[inverse]  # (numel(S), d)
        return out.view(*indices.shape, self.dim)

    def lookup_all(self) -> torch.Tensor:
        """Every composed row ``(N, d)``; in eval mode without autograd the result is cached
        until the next :meth:`train` call (evaluation asks for it once per batch)."""
        if self.training or torch.is_grad_enabled():
            return self.compose_rows(torch.arange(self.num_rows, device=self.codebook.device))
        if self._eval_cache is None:
            rows = torch.arange(self.num_rows, device=self.codebook.device)
            self._eval_cache = self.compose_rows(rows)
        return self._eval_cache

    def clear_caches(self) -> None:
        """Forget the cached evaluation table, step graph and frozen codes. Called by
        ``train()``, ``load_state_dict`` and the distillation stage; call it after changing
        the code logits or encoder in a way that bumps no version counter (writes through
        ``.data``, a fused optimizer)."""
        self._eval_cache = self._step_cache = self._codes_cache = None

    def train(self, mode: bool = True) -> KdEmbedding:
        self.clear_caches()
        return super().train(mode)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self.clear_caches()
        super()._load_from_state_dict(*args, **kwargs)

    def entropy(self, rows: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Mean entropy (nats) of the code distributions ``softmax(pi / tau)`` of ``rows``
        (``logits``: their ``pi``, ``(B, D, K)``, when already computed)."""
        pi = self.code_logits(rows) if logits is None else logits
        log_p = torch.log_softmax(pi / self.temperature, dim=-1)
        return -(log_p.exp() * log_p).sum(-1).mean()

    def _forget_step(self, grad: torch.Tensor) -> None:
        self._step_cache = None

    def _reused(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The code logits and composed rows of the last training lookup if it looked up
        exactly ``rows`` (sorted unique ids) and no backward pass has gone through them since,
        else ``None``; forgotten either way, so a graph is never reused across steps."""
        cache, self._step_cache = self._step_cache, None
        if cache is None or not (self.training and torch.is_grad_enabled()):
            return None
        seen, logits, composed = cache
        if seen.shape != rows.shape or not torch.equal(seen, rows):
            return None
        return logits, composed

    def guide(self, rows: torch.Tensor) -> torch.Tensor | None:
        """The guidance target ``u`` of ``rows`` (PDG: the pre-trained rows; online: the full
        table, detached), ``None`` without guidance."""
        if self.kd.guidance == "pdg":
            return self.teacher[rows]
        if self.kd.guidance == "online":
            return self.full[rows].detach()
        return None

    def penalty(self, indices: torch.Tensor) -> torch.Tensor:
        """Regularization of a batch (a scalar) over the unique rows of ``indices``:

        ``entropy_weight * H`` (mean code entropy, table 1's "entropy reg"; not with
        ``freeze_codes``, which leaves the code logits or encoder untouched), plus
        ``distill_weight * mean_i ||v_i - u_i||^2`` with guidance (table 1's PDG), plus the
        ``regularize`` Lp term on the composed rows (weighted by count / ``indices.numel()``).
        """
        kd, reg = self.kd, self.config.regularize
        rows, counts = torch.unique(indices.reshape(-1), return_counts=True)
        # after a training lookup of the same rows, its logits and rows serve here too (one
        # gather of the (N, D, K) logits per step instead of up to three)
        reused = self._reused(rows)
        total = self.codebook.new_zeros(())
        if kd.entropy_weight > 0 and not kd.freeze_codes:  # frozen codes: no code gradient
            total = total + kd.entropy_weight * self.entropy(
                rows, None if reused is None else reused[0]
            )
        target = self.guide(rows)
        lp = reg.kind != "none" and reg.weight > 0
        if (target is not None and kd.distill_weight > 0) or lp:
            # (U, d); online: no gradient to full
            composed = reused[1] if reused is not None else self.compose_codes(rows)
            if target is not None and kd.distill_weight > 0:
                total = total + kd.distill_weight * (composed - target).pow(2).sum(1).mean()
            if lp:
                total = total + weighted_lp(composed, counts, indices.numel(), reg)
        return total

    def training_only_parameters(self) -> list[str]:
        """Names of state entries that :meth:`export` drops (code logits or encoder, the
        pre-trained table, the online full table)."""
        names = [n for n, _ in self.named_parameters() if n.split(".")[0] in _TRAINING_ONLY]
        names += [n for n, _ in self.named_buffers() if n.split(".")[0] in _TRAINING_ONLY]
        return names


_TRAINING_ONLY = {"logits", "encoder", "teacher", "full", "temperature"}


def set_training_progress(model: nn.Module, epoch: float) -> None:
    """Anneal the temperature of every KD layer of ``model`` (call before each training batch
    with ``epoch + batch / num_batches``)."""
    for module in model.modules():
        if isinstance(module, KdEmbedding):
            module.set_progress(epoch)
