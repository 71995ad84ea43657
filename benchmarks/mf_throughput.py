"""SGD-MF epoch time and test RMSE: embedlab vs Surprise's SVD on the SSE paper's ML-1M split.

Issue 4's benchmark. Same model on both sides (r = mu + b_u + b_i + <p_u, q_i>, factors
N(0, 0.1^2), biases 0), same rank, epochs, learning rate and L2 weight; Surprise runs its Cython
per-rating SGD, embedlab its batched SGD (``train.batch_size`` ratings per step). Each side trains
``--repeats`` times, interleaved (Surprise, then each embedlab variant, per repeat) in one run; epoch time = fit time / epochs (embedlab: the
median of its per-epoch times), then medians over repeats and their ratio. Test RMSE uses
predictions clipped to [1, 5] on both sides. embedlab also runs with SSE-SE and SSE-Graph on both
tables (their overhead per epoch, as a ratio to plain SGD).

Usage: ``EMBEDLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/mf_throughput.py``
(Surprise side in ``.bench-venvs/surprise``, see benchmarks/setup_peer_envs.sh). The last stdout
line is one JSON object. Run it alone: a second CPU-heavy process distorts both sides.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import torch

from embedlab.config.io import build_typed_config
from embedlab.recsys.config import MfConfig
from embedlab.recsys.metrics import rating_metrics
from embedlab.recsys.run import build_mf_model, load_mf_dataset
from embedlab.recsys.sgd import sgd_epoch

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".bench-venvs" / "surprise" / "bin" / "python"
SPLIT = "ml-1m/sse_mf_split/ml1m_{}_ratings.csv"

VARIANTS = {
    "sgd": [],
    "sse_se": [
        "user_embedding.sse.kind=se",
        "user_embedding.sse.p=0.1",
        "item_embedding.sse.kind=se",
        "item_embedding.sse.p=0.1",
    ],  # fmt: skip
    "sse_graph": [
        "user_embedding.sse.kind=graph",
        "user_embedding.sse.p=0.1",
        "item_embedding.sse.kind=graph",
        "item_embedding.sse.p=0.1",
        "item_embedding.sse.rho=10",
        "user_embedding.sse.rho=10",
    ],  # fmt: skip
    # the tuned ML-1M configuration (configs/mf/ml-1m/sse-graph.yaml)
    "sse_graph_p0.01": [
        "user_embedding.sse.kind=graph",
        "user_embedding.sse.p=0.01",
        "item_embedding.sse.kind=graph",
        "item_embedding.sse.p=0.01",
        "item_embedding.sse.rho=10",
        "user_embedding.sse.rho=10",
    ],  # fmt: skip
}


def embedlab_run(args: argparse.Namespace, variant: str, seed: int) -> dict:
    over = [
        "dataset=ml-1m",
        f"seed={seed}",
        f"model.dim={args.factors}",
        f"train.lr={args.lr}",
        f"train.weight_decay={args.reg}",
        f"train.batch_size={args.batch_size}",
        *VARIANTS[variant],
    ]
    cfg = build_typed_config(MfConfig, overrides=over)
    dataset = load_mf_dataset(cfg)
    torch.manual_seed(seed)
    model = build_mf_model(cfg, dataset)
    train, test = dataset.splits["train"], dataset.splits["test"]
    gen = torch.Generator().manual_seed(seed)
    seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        sgd_epoch(
            model,
            users=train.users,
            items=train.items,
            ratings=train.ratings,
            lr=args.lr,
            weight_decay=args.reg,
            batch_size=args.batch_size,
            generator=gen,
        )
        seconds.append(time.perf_counter() - start)
    metrics = rating_metrics(
        model, users=test.users, items=test.items, ratings=test.ratings, scale=(1.0, 5.0)
    )
    return {"epoch_seconds": statistics.median(seconds), "test_rmse": metrics["rmse"]}


def surprise_run(args: argparse.Namespace, data_dir: Path, seed: int) -> dict:
    cmd = [
        str(PEER_PYTHON),
        str(ROOT / "benchmarks" / "peer_surprise_svd.py"),
        "--train", str(data_dir / SPLIT.format("train")),
        "--test", str(data_dir / SPLIT.format("test")),
        "--factors", str(args.factors),
        "--epochs", str(args.epochs),
        "--lr", str(args.lr),
        "--reg", str(args.reg),
        "--repeats", "1",
        "--seed", str(seed),
    ]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--reg", type=float, default=0.02)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $EMBEDLAB_DATA_DIR")
    args = parser.parse_args()
    import os

    torch.set_num_threads(args.threads)
    data_dir = args.data_dir or Path(os.environ["EMBEDLAB_DATA_DIR"])
    # interleaved: repeat k runs Surprise, then each embedlab variant, so slow phases of a shared
    # machine hit both sides alike
    ours: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    peers = []
    for seed in range(args.repeats):
        peers.append(surprise_run(args, data_dir, seed))
        for variant in VARIANTS:
            ours[variant].append(embedlab_run(args, variant, seed))
    peer = {
        "version": peers[0]["version"],
        "epoch_seconds_median": statistics.median(p["epoch_seconds_median"] for p in peers),
        "test_rmse": [p["test_rmse"][0] for p in peers],
    }
    result: dict = {
        "benchmark": "mf_sgd_ml1m_sse_split",
        "params": {k: v for k, v in vars(args).items() if k != "data_dir"},
        "torch": torch.__version__,
        "surprise": {
            "version": peer["version"],
            "epoch_seconds_median": peer["epoch_seconds_median"],
            "test_rmse": peer["test_rmse"],
        },
    }
    for variant, runs in ours.items():
        result[f"embedlab_{variant}"] = {
            "epoch_seconds_median": statistics.median(r["epoch_seconds"] for r in runs),
            "test_rmse": [r["test_rmse"] for r in runs],
        }
    base = result["embedlab_sgd"]["epoch_seconds_median"]
    result["speedup_vs_surprise"] = peer["epoch_seconds_median"] / base
    for variant in ("sse_se", "sse_graph", "sse_graph_p0.01"):
        result[f"{variant}_overhead"] = result[f"embedlab_{variant}"]["epoch_seconds_median"] / base
    print(json.dumps(result))


if __name__ == "__main__":
    main()
