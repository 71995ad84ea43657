"""The Transformer encoder-decoder (Vaswani et al., NeurIPS 2017) over two embedding tables.

``source (B, S) -> source_embedding -> * sqrt(d) + sinusoid -> dropout -> encoder -> memory``;
``target_in (B, T) -> target_embedding -> ... -> decoder(memory, causal) -> h (B, T, d)``;
``logits = h @ W.T + b`` with ``W`` the target table's rows (``tie_output``) or a separate
``(V, d)`` projection. Both tables are embedding layers of :mod:`embedlab.embeddings` (lookup
or KD codes, SSE, dropout), looked up through their template: in training mode SSE replaces
input ids — never the special ids ``<pad> <unk> <s> </s>``, which are passed as ``frozen`` —
and the prediction targets never pass through a table (SSE paper, section 5.2).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from embedlab.embeddings import EmbeddingLayer, build_embedding
from embedlab.embeddings.fast_dropout import use_dropout16
from embedlab.embeddings.graph import RowGraph
from embedlab.nmt.config import NmtConfig
from embedlab.nmt.vocab import BOS, EOS, PAD, UNK


def sinusoid(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """Vaswani et al.'s positions ``(length, dim)``: ``sin(p / 10000^(2i/d))`` in the even
    columns, ``cos`` in the odd ones."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    rate = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )  # (ceil(d/2),)
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: dim // 2])
    return table


def special_mask(ids: torch.Tensor) -> torch.Tensor:
    """``ids`` that SSE leaves alone: ``<pad> <unk> <s> </s>`` (same shape, bool)."""
    return (ids == PAD) | (ids == UNK) | (ids == BOS) | (ids == EOS)


class TransformerNmt(nn.Module):
    """Encoder-decoder over a joint vocabulary of ``vocab_size`` pieces.

    Args:
        vocab_size: V, rows of both tables.
        config: model widths and both tables' configs.
        graph: the vocabulary graph of SSE-Graph (tables with ``sse.kind: graph``).

    ``forward(source, target_in) -> logits (B, T, V)``; :meth:`encode` and :meth:`decode`
    are the two halves (decoding calls them separately).
    """

    def __init__(
        self, *, vocab_size: int, config: NmtConfig, graph: RowGraph | None = None
    ) -> None:
        super().__init__()
        mc = config.model
        self.d_model = mc.d_model
        self.source_embedding = build_embedding(
            num_rows=vocab_size, dim=mc.d_model, config=config.source_embedding, graph=graph
        )
        self.shared = mc.share_embeddings
        # a shared model has one table (one safetensors entry); target_layer() returns it
        self.target_embedding: EmbeddingLayer | None = None
        if not self.shared:
            self.target_embedding = build_embedding(
                num_rows=vocab_size, dim=mc.d_model, config=config.target_embedding, graph=graph
            )
        self.projection = None if mc.tie_output else nn.Linear(mc.d_model, vocab_size, bias=False)
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(
                mc.d_model, mc.heads, mc.ffn, mc.dropout, batch_first=True,
                norm_first=mc.norm_first,
            ),
            mc.encoder_layers,
            norm=nn.LayerNorm(mc.d_model) if mc.norm_first else None,
            enable_nested_tensor=False,
        )  # fmt: skip
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(
                mc.d_model, mc.heads, mc.ffn, mc.dropout, batch_first=True,
                norm_first=mc.norm_first,
            ),
            mc.decoder_layers,
            norm=nn.LayerNorm(mc.d_model) if mc.norm_first else None,
        )  # fmt: skip
        self.drop = nn.Dropout(mc.dropout)
        # bf16 training: every dropout module (layers and self.drop) draws 16-bit uniforms on
        # bf16 inputs (torch's bernoulli_ was ~20% of a bf16 step); fp32 inputs keep F.dropout
        # (embedlab.embeddings.fast_dropout.Dropout16)
        use_dropout16(self)
        for name, weight in self.named_parameters():
            if weight.dim() > 1 and (name.startswith("encoder") or name.startswith("decoder")):
                nn.init.xavier_uniform_(weight)
        if self.projection is not None:
            nn.init.normal_(self.projection.weight, std=mc.d_model**-0.5)

    @property
    def vocab_size(self) -> int:
        return self.output_bias.shape[0]

    def target_layer(self) -> EmbeddingLayer:
        """The target table's layer (the source layer when shared)."""
        return self.source_embedding if self.target_embedding is None else self.target_embedding

    def embed(self, layer: EmbeddingLayer, ids: torch.Tensor) -> torch.Tensor:
        """``ids (B, L) -> (B, L, d)``: table lookup (SSE on non-special ids in training mode,
        the table's dropout), ``* sqrt(d)``, plus positions, then dropout."""
        x = layer(ids, special_mask(ids)) * math.sqrt(self.d_model)  # (B, L, d)
        return self.drop(x + sinusoid(ids.shape[1], self.d_model, ids.device))

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """``source (B, S) -> memory (B, S, d)`` (padding masked)."""
        x = self.embed(self.source_embedding, source)
        return self.encoder(x, src_key_padding_mask=source == PAD)

    def decode(
        self, memory: torch.Tensor, source: torch.Tensor, target_in: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``(B, T, V)`` of the next token at each position of ``target_in (B, T)``."""
        y = self.embed(self.target_layer(), target_in)  # (B, T, d)
        length = target_in.shape[1]
        causal = torch.triu(
            torch.ones(length, length, dtype=torch.bool, device=y.device), diagonal=1
        )  # (T, T), True: a later position, not attended
        h = self.decoder(
            y, memory, tgt_mask=causal, tgt_key_padding_mask=target_in == PAD,
            memory_key_padding_mask=source == PAD,
        )  # fmt: skip
        layer = self.target_layer()
        weight = layer.lookup_all() if self.projection is None else self.projection.weight
        return F.linear(h, weight, self.output_bias)  # (B, T, V)

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(source), source, target_in)

    def penalty(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Both tables' penalties for a batch (a shared table once, over both id sets)."""
        if self.shared:
            ids = torch.cat([source.reshape(-1), target_in.reshape(-1)])
            return self.source_embedding.penalty(ids)
        return self.source_embedding.penalty(source) + self.target_layer().penalty(target_in)
