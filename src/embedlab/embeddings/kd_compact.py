"""The exported, inference-only KD-code layer and its safetensors file.

:func:`export_kd` freezes a trained :class:`~embedlab.embeddings.kd.KdEmbedding` to integer
codes ``(N, D)`` plus the code embeddings and the composition weights; the file stores each code
in ``ceil(log2 K)`` bits (:func:`pack_codes`). :class:`CompactKdEmbedding` needs no code logits
and returns exactly (bit for bit) the vectors of the trained layer in evaluation mode.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from embedlab.embeddings import kd_fast
from embedlab.embeddings.config import KdConfig
from embedlab.embeddings.kd import KdEmbedding
from embedlab.embeddings.kd_compose import Composition, build_composition, compose_hard
from embedlab.errors import UserError

FORMAT = "embedlab-kd-codes/1"


def code_bits(K: int) -> int:
    """Bits per code: ``ceil(log2 K)``."""
    return max(1, math.ceil(math.log2(K)))


def _storage_dtype(K: int) -> torch.dtype:
    return torch.uint8 if K <= 256 else torch.int16 if K <= 32768 else torch.int32


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Bit-pack non-negative integer ``codes`` (any shape, each ``< 2**bits``) into a flat uint8
    tensor of ``ceil(numel * bits / 8)`` bytes (little-endian bit order within the stream)."""
    flat = codes.reshape(-1).to(torch.int64)
    shifts = torch.arange(bits, dtype=torch.int64, device=flat.device)
    stream = ((flat.unsqueeze(1) >> shifts) & 1).reshape(-1)  # (numel * bits,)
    pad = (-stream.numel()) % 8
    stream = torch.cat([stream, stream.new_zeros(pad)]).view(-1, 8)
    weights = 2 ** torch.arange(8, dtype=torch.int64, device=stream.device)
    return (stream * weights).sum(1).to(torch.uint8)


def unpack_codes(packed: torch.Tensor, bits: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: ``(bytes,)`` uint8 -> int64 codes of ``shape``."""
    numel = math.prod(shape)
    device = packed.device
    shifts = torch.arange(8, device=device)
    stream = (packed.to(torch.int64).unsqueeze(1) >> shifts) & 1  # (bytes, 8)
    stream = stream.reshape(-1)[: numel * bits].view(numel, bits)
    values = (stream << torch.arange(bits, dtype=torch.int64, device=device)).sum(1)
    return values.view(shape)


class CompactKdEmbedding(nn.Module):
    """Inference KD layer: ``codes (N, D)`` (uint8/int16/int32 in memory), ``codebook
    (D or 1, K, d')`` and the composition; ``forward(indices)``: ``S -> S + (d,)``, float32.

    ``forward`` gathers the D code vectors and composes them with the trained composition module:
    the same operations as the trained layer's evaluation mode, hence the same bits.
    :meth:`fast_linear` precomputes, for a linear composition, the projected per-position tables
    ``(D*K, d)`` so that a lookup is one ``embedding_bag`` sum of D rows (equal up to float
    rounding; :mod:`embedlab.embeddings.kd_fast`).

    Raises (forward):
        IndexError: an index outside ``[0, N)`` (negative ones included), with the range.
    """

    codes: torch.Tensor
    offsets: torch.Tensor
    projected: torch.Tensor | None

    def __init__(
        self, *, codes: torch.Tensor, codebook: torch.Tensor, compose: Composition, config: KdConfig
    ) -> None:
        super().__init__()
        self.kd = config
        self.register_buffer("codes", codes.to(_storage_dtype(config.K)))
        self.codebook = nn.Parameter(codebook, requires_grad=False)
        self.compose = compose.requires_grad_(False)
        self.dim = compose.dim
        offsets = kd_fast.position_offsets(config.K, config.D, device=codes.device)  # (D,)
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("projected", None, persistent=False)
        self.register_load_state_dict_post_hook(_refresh_projected)

    @property
    def num_rows(self) -> int:
        return int(self.codes.shape[0])

    def fast_linear(self) -> CompactKdEmbedding:
        """Precompute the projected code tables ``T (D*K, d)`` float32 (linear composition only;
        the bias folded into position 0's rows; computed in float64, rounded once); afterwards
        ``forward`` is ``sum_j T[j*K + c^j]``, one ``embedding_bag``. Returns ``self``.
        ``load_state_dict`` recomputes ``T``; after changing the weights in place, call again.

        Raises:
            UserError: the composition is not linear.
        """
        self.projected = kd_fast.projected_table(self.codebook, self.compose, D=self.kd.D)
        return self

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        flat = indices.reshape(-1)
        try:
            rows = self.codes.index_select(0, flat)  # (B, D); raises on ids outside [0, N)
        except IndexError as err:
            raise kd_fast.out_of_range(flat, self.num_rows) from err
        if self.projected is not None:
            out = kd_fast.bag_lookup(self.projected, rows, self.offsets)  # (B, d)
        else:  # composed once per unique row, as KdEmbedding.lookup: the same bits
            unique, inverse = torch.unique(flat, return_inverse=True)
            out = compose_hard(self.compose, self.codebook, self.codes[unique])[inverse]
        return out.view(*indices.shape, self.dim)

    def all(self) -> torch.Tensor:
        """Every row ``(N, d)``."""
        return self(torch.arange(self.num_rows, device=self.codes.device))


def _refresh_projected(module: nn.Module, _incompatible: object) -> None:
    """Post-hook of ``load_state_dict``: projected tables follow the loaded weights."""
    if isinstance(module, CompactKdEmbedding) and module.projected is not None:
        module.fast_linear()


def export_kd(layer: KdEmbedding) -> CompactKdEmbedding:
    """Freeze ``layer`` to hard codes (argmax of its logits) and copies of its code embeddings and
    composition."""
    compose = build_composition(layer.kd, layer.dim).to(layer.codebook.device)
    compose.load_state_dict(layer.compose.state_dict())
    compose.eval()
    codebook = layer.codebook.detach().clone()
    return CompactKdEmbedding(
        codes=layer.codes(), codebook=codebook, compose=compose, config=layer.kd
    )


def save_compact(layer: CompactKdEmbedding, path: Path) -> None:
    """Write ``layer`` as safetensors: ``codes`` bit-packed (``ceil(log2 K)`` bits each),
    ``codebook``, ``compose.*``; the metadata holds the shapes and the KD config (JSON)."""
    bits = code_bits(layer.kd.K)
    tensors = {
        "codes": pack_codes(layer.codes.cpu(), bits),
        "codebook": layer.codebook.detach().cpu().contiguous(),
    }
    for name, value in layer.compose.state_dict().items():
        tensors[f"compose.{name}"] = value.detach().cpu().contiguous()
    meta = {
        "format": FORMAT,
        "num_rows": str(layer.num_rows),
        "dim": str(layer.dim),
        "bits": str(bits),
        "kd": json.dumps(layer.kd.model_dump()),
    }
    save_file(tensors, str(path), metadata=meta)


def load_compact(path: Path) -> CompactKdEmbedding:
    """Read a file of :func:`save_compact`.

    Raises:
        UserError: the file is missing or not an embedlab KD-code file.
    """
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        raise UserError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except SafetensorError as err:
        raise UserError(f"{path} is not an embedlab KD-code file ({err})") from err
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is not an embedlab KD-code file (format {meta.get('format')!r})")
    tensors = load_file(str(path))
    config = KdConfig.model_validate(json.loads(meta["kd"]))
    num_rows, dim, bits = int(meta["num_rows"]), int(meta["dim"]), int(meta["bits"])
    codes = unpack_codes(tensors["codes"], bits, (num_rows, config.D))
    compose = build_composition(config, dim)
    prefix = "compose."
    compose.load_state_dict(
        {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    )
    compose.eval()
    return CompactKdEmbedding(
        codes=codes, codebook=tensors["codebook"], compose=compose, config=config
    )
