"""PyKEEN 1.11.1 side of benchmarks/kge_ns_throughput.py: RotatE, sLCWA, NSSALoss on WN18RR.

Runs inside ``.bench-venvs/pykeen`` (benchmarks/setup_peer_envs.sh). Settings: RotatE with
``--dim`` complex dimensions (PyKEEN's ``embedding_dim`` counts complex numbers), batch 512
positive triples, ``--negatives`` negatives per positive from PyKEEN's default
``BasicNegativeSampler`` (each negative corrupts the head or the tail), NSSALoss (margin 6,
adversarial temperature 0.5: Sun et al.'s WN18RR settings), Adam lr 5e-5, ``BENCH_THREADS``
threads (default 2). Times ``--batches`` training steps (forward, backward, optimizer step and
PyKEEN's post-parameter update, negative sampling included) after 3 warm-up steps, repeated
``--repeats`` times; reports the median positive triples per second.

The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import statistics
import sys
import time
import warnings

import pykeen
import torch
from pykeen.losses import NSSALoss
from pykeen.models import RotatE
from pykeen.sampling import BasicNegativeSampler
from pykeen.training import SLCWATrainingLoop
from pykeen.triples import TriplesFactory
from pykeen.utils import set_random_seed

WARMUP_BATCHES = 3


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=250, help="complex dimensions")
    parser.add_argument("--negatives", type=int, default=256, help="negatives per positive")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    logging.getLogger("pykeen").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    set_random_seed(0)
    root = pathlib.Path(os.environ.get("EMBEDLAB_DATA_DIR", "../shared/datasets")) / "wn18rr"
    training = TriplesFactory.from_path(root / "train.txt")
    model = RotatE(
        triples_factory=training,
        embedding_dim=args.dim,
        loss=NSSALoss(margin=6.0, adversarial_temperature=0.5),
        random_seed=0,
    )
    optimizer = torch.optim.Adam(params=model.get_grad_params(), lr=5e-5)
    sampler = BasicNegativeSampler(
        mapped_triples=training.mapped_triples, num_negs_per_pos=args.negatives
    )
    loop = SLCWATrainingLoop(
        model=model, triples_factory=training, optimizer=optimizer, negative_sampler=sampler
    )
    loader = loop._create_training_data_loader(
        training, sampler=None, batch_size=args.batch_size, shuffle=True, drop_last=True
    )

    def endless():
        while True:
            yield from loader

    def step(batch) -> int:
        optimizer.zero_grad(set_to_none=True)
        n = SLCWATrainingLoop._get_batch_size(batch)
        loss = loop._process_batch(batch=batch, start=0, stop=n)
        loss.backward()
        optimizer.step()
        model.post_parameter_update()
        return n

    model.train()
    it = endless()
    for _ in range(WARMUP_BATCHES):
        step(next(it))
    rates = []
    for _ in range(args.repeats):
        t0, rows = time.perf_counter(), 0
        for _ in range(args.batches):
            rows += step(next(it))
        rates.append(rows / (time.perf_counter() - t0))
    out = {
        "library": "pykeen",
        "version": pykeen.get_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "dim_complex": args.dim,
        "negatives_per_positive": args.negatives,
        "batch_size": args.batch_size,
        "positive_triples_per_s": statistics.median(rates),
        "all_rates": rates,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
