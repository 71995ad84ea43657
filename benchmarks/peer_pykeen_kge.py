#!/usr/bin/env python
"""Peer throughput benchmark: PyKEEN ComplEx on WN18RR (CPU).

Standalone: runs only inside the PyKEEN virtualenv made by
``benchmarks/setup_peer_envs.sh`` (``.bench-venvs/pykeen``) and imports only
pykeen, torch and the standard library -- never embedlab.

What it measures (settings chosen to match a LibKGE-style reciprocal ComplEx):

* data: ``$EMBEDLAB_DATA_DIR/wn18rr/{train,valid,test}.txt`` (default
  ``<repo root>/../shared/datasets``), tab-separated ``head relation tail``.
  Training factory built from train.txt with ``create_inverse_triples=True``;
  valid/test reuse its ``entity_to_id``/``relation_to_id`` (PyKEEN drops test
  triples whose entities never occur in train; the count is reported).
* model: ComplEx, ``embedding_dim=64`` complex numbers (= 128 reals per
  embedding), no regularizer (``--regularizer default`` keeps PyKEEN's
  LpRegularizer), inverse (reciprocal) relations.
* training: ``LCWATrainingLoop`` (1-vs-all / KvsAll), ``CrossEntropyLoss``
  (softmax cross-entropy), Adagrad lr 0.1, batch size 512.  By default the
  loop's own DataLoader (``_create_training_data_loader``) and per-batch
  computation (``_process_batch``) are driven by hand so that a fixed number
  of batches can be timed: zero_grad -> loss -> backward -> step ->
  post_parameter_update, i.e. what PyKEEN's ``OptimizerTrainingCallback``
  does.  3 warm-up batches, then ``--train-batches`` timed batches (data
  loading included).  ``--full-epoch`` instead times one call of
  ``loop.train(num_epochs=1)`` after the warm-up batches.
* evaluation: ``RankBasedEvaluator(filtered=True)`` on the test triples with
  ``additional_filter_triples=[train, valid]``; one warm-up on the first 64
  test triples, then one timed ``evaluate`` over all (kept) test triples,
  both sides (head and tail queries).

The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import pathlib
import sys
import time
import warnings

import pykeen
import torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.losses import CrossEntropyLoss
from pykeen.models import ComplEx
from pykeen.training import LCWATrainingLoop
from pykeen.triples import TriplesFactory
from pykeen.utils import set_random_seed

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
WARMUP_BATCHES = 3
EVAL_WARMUP_TRIPLES = 64


def data_dir() -> pathlib.Path:
    raw = os.environ.get("EMBEDLAB_DATA_DIR", "../shared/datasets")
    path = pathlib.Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path.resolve()


def count_lines(path: pathlib.Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="wn18rr")
    parser.add_argument(
        "--train-batches", type=int, default=40, help="timed batches after 3 warm-up batches"
    )
    parser.add_argument(
        "--full-epoch", action="store_true", help="time one full epoch via loop.train(num_epochs=1)"
    )
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--dim", type=int, default=64, help="complex embedding size (2x as many reals)"
    )
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--eval-batch-size", type=int, default=2048, help="0 = let PyKEEN choose")
    parser.add_argument("--regularizer", choices=["none", "default"], default="none")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def time_batches(step, iterator, count: int) -> tuple[int, float, float]:
    """Run ``count`` training steps; return rows, total seconds and data-loading seconds."""
    rows, data_seconds = 0, 0.0
    t0 = time.perf_counter()
    for _ in range(count):
        t_data = time.perf_counter()
        batch = next(iterator)
        data_seconds += time.perf_counter() - t_data
        rows += step(batch)
    return rows, time.perf_counter() - t0, data_seconds


def evaluate_test(args, model, training, validation, testing, dropped_test: int) -> dict:
    """Time one filtered RankBasedEvaluator pass over the (kept) test triples."""
    model.eval()
    evaluator = RankBasedEvaluator(filtered=True)
    filter_triples = [training.mapped_triples, validation.mapped_triples]
    eval_batch_size = args.eval_batch_size or None
    evaluator.evaluate(
        model=model,
        mapped_triples=testing.mapped_triples[:EVAL_WARMUP_TRIPLES],
        additional_filter_triples=filter_triples,
        batch_size=eval_batch_size,
        use_tqdm=False,
    )
    t0 = time.perf_counter()
    metrics = evaluator.evaluate(
        model=model,
        mapped_triples=testing.mapped_triples,
        additional_filter_triples=filter_triples,
        batch_size=eval_batch_size,
        use_tqdm=False,
    )
    eval_seconds = time.perf_counter() - t0
    queries = 2 * testing.num_triples
    return {
        "queries": queries,
        "seconds": round(eval_seconds, 4),
        "queries_per_s": round(queries / eval_seconds, 1),
        "dropped_test_triples": dropped_test,
        "evaluated_test_triples": testing.num_triples,
        "batch_size": eval_batch_size if eval_batch_size else "auto",
        "query_definition": "2 x evaluated test triples (head and tail side), filtered with train+valid+test",
        "mrr_after_partial_training": round(
            float(metrics.get_metric("both.realistic.inverse_harmonic_mean_rank")), 5
        ),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for name in ("pykeen", "torch_max_mem"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    set_random_seed(args.seed)

    root = data_dir() / args.dataset
    paths = {split: root / f"{split}.txt" for split in ("train", "valid", "test")}
    for path in paths.values():
        if not path.is_file():
            raise SystemExit(f"missing {path} (set EMBEDLAB_DATA_DIR)")

    t0 = time.perf_counter()
    training = TriplesFactory.from_path(paths["train"], create_inverse_triples=True)
    mapping = dict(entity_to_id=training.entity_to_id, relation_to_id=training.relation_to_id)
    validation = TriplesFactory.from_path(paths["valid"], create_inverse_triples=True, **mapping)
    testing = TriplesFactory.from_path(paths["test"], create_inverse_triples=True, **mapping)
    load_seconds = time.perf_counter() - t0
    raw_test = count_lines(paths["test"])
    dropped_test = raw_test - testing.num_triples

    model_kwargs = {}
    if args.regularizer == "none":
        model_kwargs["regularizer"] = None
    model = ComplEx(
        triples_factory=training,
        embedding_dim=args.dim,
        loss=CrossEntropyLoss(),
        random_seed=args.seed,
        **model_kwargs,
    )
    optimizer = torch.optim.Adagrad(params=model.get_grad_params(), lr=args.lr)
    loop = LCWATrainingLoop(model=model, triples_factory=training, optimizer=optimizer)

    generator = torch.Generator().manual_seed(args.seed)
    loader = loop._create_training_data_loader(
        training,
        sampler=None,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=False,
        generator=generator,
    )
    rows_per_epoch = len(loader.dataset)
    batches_per_epoch = math.ceil(rows_per_epoch / args.batch_size)

    def step(batch) -> float:
        optimizer.zero_grad(set_to_none=True)
        n = LCWATrainingLoop._get_batch_size(batch)
        loss = loop._process_batch(batch=batch, start=0, stop=n)
        loss.backward()
        optimizer.step()
        model.post_parameter_update()
        return n

    def endless():
        # start a new (reshuffled) epoch when one runs out, so any batch count works
        while True:
            yield from loader

    model.train()
    iterator = endless()
    for _ in range(WARMUP_BATCHES):
        step(next(iterator))

    if args.full_epoch:
        # loop.train() builds its own DataLoader (LCWA instances included in the time).
        t0 = time.perf_counter()
        loop.train(
            triples_factory=training,
            num_epochs=1,
            batch_size=args.batch_size,
            drop_last=False,
            use_tqdm=False,
            use_tqdm_batch=False,
            num_workers=0,
            pin_memory=False,
        )
        train_seconds = time.perf_counter() - t0
        train_rows = rows_per_epoch
        timed_batches = batches_per_epoch
        train_mode = "full_epoch: one loop.train(num_epochs=1) call after 3 warm-up batches"
    else:
        timed_batches = args.train_batches
        if timed_batches < 1:
            raise SystemExit("--train-batches must be >= 1")
        train_rows, train_seconds, data_seconds = time_batches(step, iterator, timed_batches)
        train_mode = (
            f"fixed_batches: {timed_batches} batches after 3 warm-up batches, data loading included"
        )

    result = {
        "peer": "pykeen",
        "version": pykeen.get_version(),
        "torch": torch.__version__,
        "dataset": args.dataset,
        "model": {
            "name": "ComplEx",
            "complex_dim": args.dim,
            "real_dim": 2 * args.dim,
            "inverse_triples": True,
            "regularizer": None if args.regularizer == "none" else "LpRegularizer(default)",
        },
        "train": {
            "rows": train_rows,
            "seconds": round(train_seconds, 4),
            "rows_per_s": round(train_rows / train_seconds, 1),
            "batches": timed_batches,
            "data_loading_seconds": None if args.full_epoch else round(data_seconds, 4),
            "batch_size": args.batch_size,
            "rows_per_epoch": rows_per_epoch,
            "mode": train_mode,
            "loss": "CrossEntropyLoss (softmax CE over all entities)",
            "optimizer": f"Adagrad lr={args.lr}",
            "row_definition": (
                "one LCWA instance = one unique (head, relation) pair of the training triples plus their inverse "
                "triples, scored against all entities with a multi-hot target; rows_per_epoch counts them"
            ),
        },
        "threads": threads,
        "seed": args.seed,
        "data": {
            "dir": str(root),
            "train_triples": training.num_triples,
            "valid_triples": validation.num_triples,
            "test_triples_raw": raw_test,
            "num_entities": training.num_entities,
            "num_entities_note": "PyKEEN scores against entities seen in train.txt only",
            "num_relations_incl_inverse": training.num_relations,
            "load_seconds": round(load_seconds, 3),
        },
    }

    if not args.skip_eval:
        result["eval"] = evaluate_test(args, model, training, validation, testing, dropped_test)

    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
