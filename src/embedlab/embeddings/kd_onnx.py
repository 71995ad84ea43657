"""ONNX export of a compact KD-code layer: ``ids (batch,) int64 -> vectors (batch, d) float32``.

The exported graph needs neither embedlab nor torch: onnxruntime (or any ONNX runtime) serves
the compressed table. It holds the codes ``(N, D)`` (uint8 for K <= 256, int16, int32: ONNX has
no narrower type, so the file is larger than the bit-packed safetensors of
:func:`~embedlab.embeddings.kd_compact.save_compact`) and

* linear composition: the projected tables ``T (D*K, d)`` of
  :func:`~embedlab.embeddings.kd_fast.projected_table`; a row is
  ``ReduceSum_j Gather(T, codes[id, j] + j*K)``, the fast path's sum;
* mlp / lstm: the code embeddings ``(D*K, d')`` and the composition module, traced.

Exported with torch's TorchScript-based exporter (``dynamo=False``: no onnxscript needed), opset
17, the batch axis dynamic. Requires the ``onnx`` extra (``pip install 'embedlab[onnx]'``).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
from torch import nn

from embedlab.embeddings import kd_fast
from embedlab.embeddings.kd_compact import CompactKdEmbedding
from embedlab.embeddings.kd_compose import LinearComposition
from embedlab.errors import UserError

OPSET = 17
INPUT, OUTPUT = "ids", "vectors"


class OnnxKdLookup(nn.Module):
    """The export form of ``layer``: ``forward(ids (B,) int64) -> (B, d)``, written with
    operations that map one-to-one to ONNX (Gather, Cast, Add, ReduceSum, the composition).

    Equal to ``layer`` up to float rounding (linear: the same float32 table as
    :meth:`CompactKdEmbedding.fast_linear`, summed in the runtime's order).
    """

    codes: torch.Tensor
    offsets: torch.Tensor
    table: torch.Tensor

    def __init__(self, *, layer: CompactKdEmbedding) -> None:
        super().__init__()
        kd = layer.kd
        self.linear = type(layer.compose) is LinearComposition
        self.register_buffer("codes", layer.codes.detach().clone())  # (N, D)
        self.register_buffer(
            "offsets", torch.arange(kd.D, device=layer.codes.device) * kd.K
        )  # (D,) int64
        if self.linear:
            table = kd_fast.projected_table(layer.codebook, layer.compose, D=kd.D)  # (D*K, d)
        else:
            book = layer.codebook.detach().expand(kd.D, -1, -1)  # (D, K, d')
            table = book.reshape(kd.D * kd.K, -1).clone()  # (D*K, d')
            self.compose = layer.compose
        self.register_buffer("table", table)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.codes[ids].long() + self.offsets  # (B, D) rows of the table
        vectors = self.table[rows]  # (B, D, d) linear; (B, D, d') otherwise
        if self.linear:
            return vectors.sum(1)  # (B, d)
        return self.compose(vectors)  # (B, d)


def export_onnx(layer: CompactKdEmbedding, path: Path) -> Path:
    """Write ``layer`` (any composition) as an ONNX model to ``path``: input ``ids`` int64
    ``(batch,)``, output ``vectors`` float32 ``(batch, d)``; ``batch`` is dynamic (an empty
    batch works for linear and mlp; onnxruntime 1.30 aborts on an empty LSTM batch). Ids
    outside ``[0, N)`` are the runtime's business: onnxruntime rejects ids ``>= N`` and, as
    ONNX ``Gather`` specifies, reads ``-N <= id < 0`` as ``id + N``.

    Raises:
        UserError: the ``onnx`` package is not installed.
    """
    if importlib.util.find_spec("onnx") is None:  # torch's exporter needs it for the checker
        raise UserError("ONNX export needs the onnx extra: pip install 'embedlab[onnx]'")
    module = OnnxKdLookup(layer=layer).cpu().eval()
    example = torch.zeros(2, dtype=torch.int64, device="cpu")
    path = Path(path)
    with warnings.catch_warnings():  # the TorchScript exporter announces its deprecation
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        # the LSTM's shape checks compare fixed sizes; its initial state is built from the input's batch size: any batch >= 1 works
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path
