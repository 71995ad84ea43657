"""KD-code lookup vs a plain table: throughput and memory of CompactKdEmbedding vs nn.Embedding.

For each table size (defaults: N = 10,000 rows, d = 200, PTB's vocabulary; N = 40,943, d = 128,
WN18RR's entities) and each code shape (K = 32, D = 32 and K = 16, D = 8; d' = 64, linear
composition), a batch of uniformly random indices is looked up by

* ``nn.Embedding(N, d)`` (the fp32 table),
* ``CompactKdEmbedding`` on its exact path (gather the D code vectors of each unique row, compose),
* ``CompactKdEmbedding.fast_linear()`` (``embedlab.embeddings.kd_fast``: the uint8 codes of the
  batch plus fixed position offsets, one ``embedding_bag`` sum over D rows of the precomputed
  ``(D*K, d)`` float32 projected tables, the bias folded in).

Throughput is indices per second: each measurement times ``calls`` lookups (``calls`` chosen at
warm-up so that one measurement lasts about ``--min-time`` seconds), the three variants
interleaved within every repeat (a slow phase of a shared machine hits all three), and the median
over ``--repeats`` is reported, at every ``--threads`` value (``torch.set_num_threads``).
Memory: bytes of the fp32 weight; in-memory bytes of the compact layer (codes buffer, code
embeddings, composition; the fast path's projected table counted apart); bytes of the
``save_compact`` file (codes bit-packed to ``ceil(log2 K)`` bits), of a file that would store the
projected tables instead of code embeddings + composition (computed, for comparison), and of the
ONNX export (``kd_onnx.export_onnx``: codes one byte each, projected tables; when ``onnx`` is
installed). Ratios are compact / nn.Embedding (time per index and bytes); ``summary`` holds the
fast path's ratios beside issue 14's targets (``--targets``). Codes and weights are random:
lookup cost does not depend on them.

Usage: ``.venv/bin/python benchmarks/kd_lookup.py --threads 2 [--out FILE]``; stdout is one JSON
document. Run it alone: another CPU-heavy process distorts the timings (the load average is
recorded).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from cell_queue import machine  # benchmarks/ is on sys.path when run as a script
from torch import nn

from embedlab.embeddings.config import KdConfig
from embedlab.embeddings.kd_compact import CompactKdEmbedding, code_bits, save_compact
from embedlab.embeddings.kd_compose import build_composition
from embedlab.embeddings.kd_onnx import export_onnx
from embedlab.errors import UserError

Lookup = Callable[[torch.Tensor], torch.Tensor]
ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """``HEAD`` of the repository, ``+dirty`` when tracked files differ from it."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    return head.stdout.strip() + ("+dirty" if dirty else "")


def parse_targets(text: str) -> dict[str, float]:
    """``"16x8:2,32x32:5"`` -> ``{"16x8": 2.0, "32x32": 5.0}`` (KxD: time ratio)."""
    return {key: float(value) for key, value in (item.split(":") for item in text.split(","))}


def parse_tables(text: str) -> list[tuple[str, int, int]]:
    """``"ptb:10000:200,wn18rr:40943:128"`` -> ``[(name, N, d), ...]``."""
    out = []
    for item in text.split(","):
        name, rows, dim = item.split(":")
        out.append((name, int(rows), int(dim)))
    return out


def parse_codes(text: str) -> list[tuple[int, int]]:
    """``"32x32,16x8"`` -> ``[(K, D), ...]``."""
    return [(int(k), int(d)) for k, d in (item.split("x") for item in text.split(","))]


def build_compact(
    *, rows: int, dim: int, config: KdConfig, generator: torch.Generator
) -> CompactKdEmbedding:
    """A compact layer with random codes ``(N, D)``, code embeddings and composition."""
    codes = torch.randint(0, config.K, (rows, config.D), generator=generator)
    positions = 1 if config.shared_codebook else config.D
    codebook = torch.randn(positions, config.K, config.code_dim, generator=generator)
    compose = build_composition(config, dim).eval()
    return CompactKdEmbedding(codes=codes, codebook=codebook, compose=compose, config=config)


def tensor_bytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def compact_bytes(layer: CompactKdEmbedding) -> int:
    """In-memory bytes of every parameter and buffer (codes, offsets, codebook, composition)."""
    return tensor_bytes([*layer.parameters(), *layer.buffers()])


def file_bytes(layer: CompactKdEmbedding) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "codes.safetensors"
        save_compact(layer, path)
        return path.stat().st_size


def onnx_bytes(layer: CompactKdEmbedding) -> int | None:
    """Bytes of the ONNX export, ``None`` without the ``onnx`` extra."""
    try:
        with tempfile.TemporaryDirectory() as folder:
            return export_onnx(layer, Path(folder) / "kd.onnx").stat().st_size
    except UserError:  # the onnx package is missing
        return None


def projected_format_bytes(layer: CompactKdEmbedding) -> int:
    """Payload bytes of a file storing bit-packed codes plus the fp32 projected tables
    ``(D*K, d)`` instead of code embeddings and composition (no header)."""
    kd = layer.kd
    packed = math.ceil(layer.num_rows * kd.D * code_bits(kd.K) / 8)
    return packed + 4 * kd.D * kd.K * layer.dim


def time_calls(fn: Lookup, indices: torch.Tensor, calls: int) -> float:
    """Seconds for ``calls`` lookups of ``indices``."""
    start = time.perf_counter()
    for _ in range(calls):
        fn(indices)
    return time.perf_counter() - start


def calibrate(fn: Lookup, indices: torch.Tensor, min_time: float) -> int:
    """Warm up, then the number of calls that lasts about ``min_time`` seconds."""
    fn(indices)
    once = max(time_calls(fn, indices, 1), 1e-7)
    return max(1, math.ceil(min_time / once))


@torch.inference_mode()
def run_case(
    args: argparse.Namespace, name: str, rows: int, dim: int, K: int, D: int, threads: int
) -> dict[str, Any]:
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(args.seed)
    config = KdConfig(K=K, D=D, code_dim=args.code_dim, composition=args.composition)
    table = nn.Embedding(rows, dim)
    exact = build_compact(rows=rows, dim=dim, config=config, generator=gen)
    fast = build_compact(rows=rows, dim=dim, config=config, generator=gen)
    fast.load_state_dict(exact.state_dict())
    fast.fast_linear()
    variants: dict[str, Lookup] = {"nn_embedding": table, "compact_exact": exact}
    variants["compact_fast_linear"] = fast
    probe = torch.randint(0, rows, (args.batch,), generator=gen)
    diff = float((fast(probe) - exact(probe)).abs().max())
    calls = {key: calibrate(fn, probe, args.min_time) for key, fn in variants.items()}
    seconds: dict[str, list[float]] = {key: [] for key in variants}
    for _ in range(args.repeats):
        indices = torch.randint(0, rows, (args.batch,), generator=gen)
        for key, fn in variants.items():  # interleaved: each repeat times every variant
            seconds[key].append(time_calls(fn, indices, calls[key]) / calls[key])
    timing = {
        key: {
            "seconds_per_batch_median": statistics.median(values),
            "indices_per_s": args.batch / statistics.median(values),
            "calls_per_measurement": calls[key],
        }
        for key, values in seconds.items()
    }
    base = timing["nn_embedding"]["seconds_per_batch_median"]
    table_bytes = tensor_bytes([table.weight])
    in_memory = compact_bytes(exact)
    projected = tensor_bytes([t for t in (fast.projected,) if t is not None])
    on_disk, on_disk_onnx = file_bytes(exact), onnx_bytes(exact)
    return {
        "table": name,
        "N": rows,
        "d": dim,
        "K": K,
        "D": D,
        "code_dim": args.code_dim,
        "composition": args.composition,
        "threads": threads,
        "code_dtype": str(exact.codes.dtype).removeprefix("torch."),
        **timing,
        "time_ratio_exact": timing["compact_exact"]["seconds_per_batch_median"] / base,
        "time_ratio_fast_linear": timing["compact_fast_linear"]["seconds_per_batch_median"] / base,
        "max_abs_diff_fast_vs_exact": diff,
        "memory": {
            "nn_embedding_bytes": table_bytes,
            "compact_bytes": in_memory,
            "fast_linear_extra_bytes": projected,
            "file_bytes": on_disk,
            "projected_format_payload_bytes": projected_format_bytes(exact),
            "onnx_file_bytes": on_disk_onnx,
            "ratio_compact": in_memory / table_bytes,
            "ratio_compact_with_fast_tables": (in_memory + projected) / table_bytes,
            "ratio_file": on_disk / table_bytes,
            "ratio_onnx_file": None if on_disk_onnx is None else on_disk_onnx / table_bytes,
        },
    }


def summarize(case: dict[str, Any], target: float | None) -> dict[str, Any]:
    """One line of ``summary``: the fast path's time ratio beside its target (if any)."""
    ratio = case["time_ratio_fast_linear"]
    return {
        **{key: case[key] for key in ("table", "K", "D", "threads")},
        "time_ratio_fast_linear": round(ratio, 3),
        "target": target,
        "met": None if target is None else ratio <= target,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="ptb:10000:200,wn18rr:40943:128", help="name:N:d,…")
    parser.add_argument("--codes", default="32x32,16x8", help="KxD,…")
    parser.add_argument("--code-dim", type=int, default=64)
    parser.add_argument("--composition", choices=["linear"], default="linear")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", default="16x8:2,32x32:5", help="KxD:max time ratio,…")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    load_start = os.getloadavg()
    start = time.perf_counter()
    cases = [
        run_case(args, name, rows, dim, K, D, t)
        for name, rows, dim in parse_tables(args.tables)
        for K, D in parse_codes(args.codes)
        for t in threads
    ]
    targets = parse_targets(args.targets)
    summary = [summarize(case, targets.get(f"{case['K']}x{case['D']}")) for case in cases]
    result = {
        "benchmark": "kd_lookup",
        "commit": git_commit(),
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "machine": machine(),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - start, 1),
        "summary": summary,
        "cases": cases,
    }
    text = json.dumps(result)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
