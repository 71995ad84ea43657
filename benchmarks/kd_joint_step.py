"""One end-to-end KD step over a whole entity table: the pooled composition vs the dense form.

A 1vsAll KGE batch with a KD entity table composes all N rows, forward and backward, at every
step (issue 14, part 2: the joint stage of ``benchmarks/kd_kge_curve.py``). This times that
composition for the presets of that script (PDG auto-encoding: the encoder reads a random
``(N, d)`` teacher; linear composition; straight-through softmax codes), three ways:

* ``pooled``: ``KdEmbedding.lookup_all()`` as it is now (``kd_compose.relaxed_code_sum``: the
  hard codes' sum by one ``embedding_bag``, the soft gradient by one ``(N, d') x (d', D*K)``
  product);
* ``dense``: the form it replaced, ``einsum("bdk,dke->bde", one_hot + soft - soft.detach(), W)``
  then the composition of the ``(N, D, d')`` vectors (written here, from the layer's parts);
* ``frozen``: ``kd.freeze_codes=true`` (the frozen stage: cached hard codes, codebook and
  composition trained).

Each timing is forward plus ``backward`` of ``<g, V>`` for a fixed random ``g (N, d)``; the three
are interleaved in every repeat and the median over ``--repeats`` is reported, with the
pooled/dense ratio and the largest difference between their outputs and parameter gradients
(encoder, codebook, composition) on a float64 copy of the layer (they compute the same thing).

Usage: ``.venv/bin/python benchmarks/kd_joint_step.py --threads 2 --out FILE``; stdout is one
JSON document. Run it alone (another CPU-heavy process distorts the timings).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from cell_queue import git_commit, machine  # benchmarks/ is on sys.path when run as a script

from embedlab.embeddings.config import EmbeddingConfig
from embedlab.embeddings.kd import KdEmbedding

#: kd_kge_curve.py's presets (K:D:d') and table shapes (N, d)
PRESETS = {
    "wn18rr": ((40943, 128), ("64:32:128", "32:18:128", "16:12:128", "16:5:128")),
    "fb15k-237": ((14541, 128), ("32:26:128", "16:15:128", "16:10:64", "16:6:32")),
}


def make_layer(rows: int, dim: int, setting: str, *, frozen: bool, seed: int) -> KdEmbedding:
    """A PDG auto-encoding KD table of ``rows x dim`` with ``K:D:d'`` = ``setting``."""
    K, D, code_dim = (int(x) for x in setting.split(":"))
    torch.manual_seed(seed)
    kd = {"K": K, "D": D, "code_dim": code_dim, "guidance": "pdg", "autoencode": True}
    config = EmbeddingConfig.model_validate({"kind": "kd", "kd": {**kd, "freeze_codes": frozen}})
    teacher = torch.randn(rows, dim)
    return KdEmbedding(num_rows=rows, dim=dim, config=config, teacher=teacher).train()


def dense_rows(layer: KdEmbedding) -> torch.Tensor:
    """The composed table by the dense form (what ``compose_codes`` did before the pooled path)."""
    rows = torch.arange(layer.num_rows)
    weights = layer.relaxed_codes(rows)  # (N, D, K)
    return layer.compose(torch.einsum("bdk,dke->bde", weights, layer._codebook()))


def step(layer: KdEmbedding, forward: Callable[[], torch.Tensor], g: torch.Tensor) -> float:
    """Seconds of one forward + backward of ``<g, forward()>``."""
    layer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    (forward() * g).sum().backward()
    return time.perf_counter() - start


def measure(rows: int, dim: int, setting: str, repeats: int) -> dict[str, Any]:
    """Medians of the three variants for one setting, and pooled vs dense agreement."""
    layer = make_layer(rows, dim, setting, frozen=False, seed=0)
    frozen = make_layer(rows, dim, setting, frozen=True, seed=0)
    g = torch.randn(rows, dim, generator=torch.Generator().manual_seed(1))
    variants: dict[str, tuple[KdEmbedding, Callable[[], torch.Tensor]]] = {
        "pooled": (layer, layer.lookup_all),
        "dense": (layer, lambda: dense_rows(layer)),
        "frozen": (frozen, frozen.lookup_all),
    }
    # agreement in float64 (in float32 a code whose two best logits differ by an ulp may flip
    # between two evaluations of the encoder: MKL's rounding depends on memory alignment)
    exact = copy.deepcopy(layer).double()
    outputs, grads = {}, {}
    for name in ("pooled", "dense"):
        exact.zero_grad(set_to_none=True)
        out = exact.lookup_all() if name == "pooled" else dense_rows(exact)
        (out * g.double()).sum().backward()
        outputs[name] = out.detach()
        grads[name] = {n: p.grad.clone() for n, p in exact.named_parameters() if p.grad is not None}
    del exact
    for owner, forward in variants.values():  # warm-up
        step(owner, forward, g)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (owner, forward) in variants.items():
            times[name].append(step(owner, forward, g))
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {
        "setting": setting,
        "rows": rows,
        "dim": dim,
        "seconds": times,
        "median_seconds": medians,
        "dense_over_pooled": medians["dense"] / medians["pooled"],
        "dense_over_frozen": medians["dense"] / medians["frozen"],
        "max_abs_diff_rows": float((outputs["pooled"] - outputs["dense"]).abs().max()),
        "max_abs_diff_grads": max(
            float((grads["pooled"][n] - grads["dense"][n]).abs().max()) for n in grads["dense"]
        ),
        "grads_compared": sorted(grads["dense"]),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=sorted(PRESETS))
    parser.add_argument(
        "--rows", type=int, default=None, help="N for every preset (default: the dataset's)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for preset in args.presets:
        (rows, dim), settings = PRESETS[preset]
        for setting in settings:
            row = measure(args.rows or rows, dim, setting, args.repeats)
            results.append({"preset": preset, **row})
    doc = {
        "benchmark": "kd_joint_step",
        "commit": git_commit(),
        "machine": machine(),
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "results": results,
    }
    text = json.dumps(doc, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
