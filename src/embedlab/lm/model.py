"""The LSTM language model of Zaremba, Sutskever & Vinyals (arXiv:1409.2329, 2014).

``x_t -> E_in[x_t] -> dropout -> LSTM (layers, dropout between) -> dropout -> h_t``;
``logits_t = h_t @ E_out.T + b`` with ``E_out`` the output embedding layer's ``(V, hidden)`` table
(``tie_weights``: ``E_out = E_in``). Both tables are embedding layers of :mod:`embedlab.embeddings`
(lookup, SSE, KD codes). The model returns logits; the loss is the training step's
(:mod:`embedlab.lm.objective`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from embedlab.embeddings import EmbeddingLayer, build_embedding
from embedlab.lm.config import LmConfig

State = tuple[torch.Tensor, torch.Tensor]
"""LSTM state ``(h, c)``, each ``(layers, batch, hidden)``."""


class LstmLm(nn.Module):
    """Word-level LSTM LM over a vocabulary of ``vocab_size`` tokens.

    Args:
        vocab_size: V, rows of both tables.
        config: model widths and both tables' configs.
        token_teacher: pre-trained ``(V, embedding_dim)`` table for the token layer (KD guidance).
        output_teacher: pre-trained ``(V, hidden)`` table for the output layer.

    ``forward(inputs, state=None)``: ``inputs (B, T)`` int64 -> ``(logits (B, T, V), state)``;
    ``state=None`` starts from zeros. In training mode the softmax table is
    ``output_embedding(arange(V))`` (SSE replaces rows, dropout applies); in eval mode
    ``output_embedding.all()``.
    """

    all_rows: torch.Tensor

    def __init__(
        self,
        *,
        vocab_size: int,
        config: LmConfig,
        token_teacher: torch.Tensor | None = None,
        output_teacher: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        mc = config.model
        self.token_embedding = build_embedding(
            num_rows=vocab_size,
            dim=mc.embedding_dim,
            config=config.token_embedding,
            teacher=token_teacher,
        )
        self.tied = mc.tie_weights
        # a tied model has one table (one safetensors entry); output_layer() returns it
        self.output_embedding: EmbeddingLayer | None = None
        if not self.tied:
            self.output_embedding = build_embedding(
                num_rows=vocab_size,
                dim=mc.hidden,
                config=config.output_embedding,
                teacher=output_teacher,
            )
        self.lstm = nn.LSTM(
            mc.embedding_dim,
            mc.hidden,
            num_layers=mc.layers,
            dropout=mc.dropout if mc.layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(mc.dropout)
        self.bias = nn.Parameter(torch.empty(vocab_size))
        self.register_buffer("all_rows", torch.arange(vocab_size), persistent=False)
        with torch.no_grad():
            for weight in self.lstm.parameters():
                weight.uniform_(-mc.init_scale, mc.init_scale)
            self.bias.uniform_(-mc.init_scale, mc.init_scale)

    @property
    def vocab_size(self) -> int:
        return self.bias.shape[0]

    def input_layer(self) -> EmbeddingLayer:
        return self.token_embedding

    def output_layer(self) -> EmbeddingLayer:
        """The output table's layer (the token layer when tied)."""
        return self.token_embedding if self.output_embedding is None else self.output_embedding

    def initial_state(self, batch_size: int) -> State:
        """Zeros ``(layers, batch_size, hidden)`` twice."""
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        zeros = self.bias.new_zeros(shape)
        return zeros, zeros.clone()

    def output_table(self) -> torch.Tensor:
        """The softmax table ``(V, hidden)`` (see the class docstring).

        Without SSE, ``layer(arange(V))`` equals ``layer.all()`` (same rows, same dropout), which
        skips a ``(V, hidden)`` gather and its scatter-add backward.
        """
        layer = self.output_layer()
        if self.training and layer.sse is not None:
            return layer(self.all_rows)  # SSE replaces rows of the softmax table
        return layer.all()

    def forward(
        self, inputs: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        if state is None:
            state = self.initial_state(inputs.shape[0])
        x = self.drop(self.input_layer()(inputs))  # (B, T, E)
        h, new_state = self.lstm(x, state)  # (B, T, H)
        logits = F.linear(self.drop(h), self.output_table(), self.bias)  # (B, T, V)
        return logits, new_state

    def penalty(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Both tables' penalties for a window: token rows ``inputs``, output rows ``targets``
        (a tied table is penalized once, over both index sets)."""
        if self.tied:
            return self.input_layer().penalty(torch.cat([inputs.reshape(-1), targets.reshape(-1)]))
        return self.input_layer().penalty(inputs) + self.output_layer().penalty(targets)
