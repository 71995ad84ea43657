#!/usr/bin/env python
"""Peer benchmark: Surprise (scikit-surprise) SVD matrix factorization (CPU).

Standalone: runs only inside the Surprise virtualenv made by
``benchmarks/setup_peer_envs.sh surprise`` (``.bench-venvs/surprise``) and
imports only surprise, numpy, pandas and the standard library -- never
embedlab.

    .bench-venvs/surprise/bin/python benchmarks/peer_surprise_svd.py \\
        --train TRAIN.csv --test TEST.csv [--factors 100 --epochs 20 ...]

Input files: ``user,item,rating`` rows, no header; the separator (comma or
tab) is sniffed from the first non-empty line of each file.

Per repeat ``r`` (``--repeats``):

* the trainset is built (not timed): ``Reader(rating_scale=(1, 5))``,
  ``Dataset.load_from_df(...).build_full_trainset()``;
* timed with ``time.perf_counter``: ``SVD(n_factors, n_epochs, biased, lr_all,
  reg_all, init_std_dev, random_state=seed + r).fit(trainset)`` (Surprise's
  plain SGD, single-threaded Cython);
* ``algo.test(testset)`` (not timed). NOTE: Surprise clips every estimate to
  the rating scale [1, 5] by default (``predict(..., clip=True)``), so the
  reported RMSE/MAE are of clipped predictions. Test pairs with a user or
  item unseen in training are predicted too (biased SVD: the known bias
  terms; otherwise Surprise falls back to the global mean); their count is
  reported as ``num_test_unknown`` / ``num_test_impossible``.

RMSE/MAE are computed with numpy from the predictions and cross-checked
against ``surprise.accuracy.rmse`` / ``mae``.

stdout: exactly one JSON object. Progress/info goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time

import numpy as np
import pandas as pd
import surprise
from surprise import SVD, Dataset, Reader, accuracy

RATING_SCALE = (1, 5)


def log(msg: str) -> None:
    print(f"[peer_surprise_svd] {msg}", file=sys.stderr, flush=True)


def sniff_sep(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                if "\t" in line:
                    return "\t"
                if "," in line:
                    return ","
                raise ValueError(f"{path}: first line has neither a tab nor a comma: {line!r}")
    raise ValueError(f"{path}: empty file")


def read_ratings(path: str) -> pd.DataFrame:
    sep = sniff_sep(path)
    df = pd.read_csv(
        path,
        sep=sep,
        header=None,
        names=["user", "item", "rating"],
        usecols=[0, 1, 2],
        dtype={"user": str, "item": str, "rating": np.float64},
        engine="c",
    )
    if df.isna().any().any():
        raise ValueError(f"{path}: missing values")
    log(f"read {len(df)} ratings from {path} (sep={sep!r})")
    return df


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--factors", type=int, default=100)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--reg", type=float, default=0.02)
    p.add_argument("--biased", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--init-std", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.repeats < 1 or args.epochs < 1 or args.factors < 1:
        p.error("--repeats, --epochs and --factors must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    train_df = read_ratings(args.train)
    test_df = read_ratings(args.test)
    for name, df in (("train", train_df), ("test", test_df)):
        lo, hi = df["rating"].min(), df["rating"].max()
        if lo < RATING_SCALE[0] or hi > RATING_SCALE[1]:
            log(f"WARNING: {name} ratings span [{lo}, {hi}], outside rating_scale {RATING_SCALE}")

    known_users = set(train_df["user"].unique())
    known_items = set(train_df["item"].unique())
    unknown_mask = ~(test_df["user"].isin(known_users) & test_df["item"].isin(known_items))
    num_test_unknown = int(unknown_mask.sum())

    testset = list(
        zip(
            test_df["user"].tolist(),
            test_df["item"].tolist(),
            test_df["rating"].tolist(),
            strict=False,
        )
    )
    y_true = test_df["rating"].to_numpy(dtype=np.float64)
    reader = Reader(rating_scale=RATING_SCALE)

    fit_seconds, test_rmse, test_mae, impossible = [], [], [], []
    num_train = None
    for r in range(args.repeats):
        trainset = Dataset.load_from_df(
            train_df[["user", "item", "rating"]], reader
        ).build_full_trainset()
        num_train = trainset.n_ratings
        algo = SVD(
            n_factors=args.factors,
            n_epochs=args.epochs,
            biased=args.biased,
            lr_all=args.lr,
            reg_all=args.reg,
            init_std_dev=args.init_std,
            random_state=args.seed + r,
        )
        t0 = time.perf_counter()
        algo.fit(trainset)
        dt = time.perf_counter() - t0

        predictions = algo.test(testset)  # clip=True by default
        est = np.fromiter((p.est for p in predictions), dtype=np.float64, count=len(predictions))
        true = np.fromiter((p.r_ui for p in predictions), dtype=np.float64, count=len(predictions))
        assert np.array_equal(true, y_true), "prediction order differs from testset"
        err = est - true
        rmse = float(np.sqrt(np.mean(err * err)))
        mae = float(np.mean(np.abs(err)))
        ref_rmse = accuracy.rmse(predictions, verbose=False)
        ref_mae = accuracy.mae(predictions, verbose=False)
        if not (
            math.isclose(rmse, ref_rmse, rel_tol=1e-9, abs_tol=1e-12)
            and math.isclose(mae, ref_mae, rel_tol=1e-9, abs_tol=1e-12)
        ):
            raise AssertionError(
                f"numpy RMSE/MAE {rmse}/{mae} != surprise.accuracy {ref_rmse}/{ref_mae}"
            )
        n_imp = sum(1 for p in predictions if p.details.get("was_impossible", False))
        if est.min() < RATING_SCALE[0] or est.max() > RATING_SCALE[1]:
            raise AssertionError("estimates outside the rating scale: clipping not applied?")

        fit_seconds.append(dt)
        test_rmse.append(rmse)
        test_mae.append(mae)
        impossible.append(n_imp)
        log(
            f"repeat {r + 1}/{args.repeats}: fit {dt:.3f} s ({dt / args.epochs:.4f} s/epoch), "
            f"test RMSE {rmse:.4f} MAE {mae:.4f} (surprise.accuracy RMSE {ref_rmse:.4f}), "
            f"impossible {n_imp}"
        )

    med_fit = statistics.median(fit_seconds)
    result = {
        "peer": "surprise",
        "version": surprise.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "params": {
            "factors": args.factors,
            "epochs": args.epochs,
            "lr": args.lr,
            "reg": args.reg,
            "biased": args.biased,
            "init_std": args.init_std,
            "repeats": args.repeats,
            "seed": args.seed,
            "rating_scale": list(RATING_SCALE),
            "train": args.train,
            "test": args.test,
        },
        "num_train": num_train,
        "num_test": len(testset),
        "num_test_unknown": num_test_unknown,
        "num_test_impossible": impossible,
        "fit_seconds": fit_seconds,
        "epoch_seconds_median": statistics.median(f / args.epochs for f in fit_seconds),
        "ratings_per_second_median": num_train * args.epochs / med_fit,
        "test_rmse": test_rmse,
        "test_mae": test_mae,
        "clipped": True,
        "clip_note": (
            f"Surprise clips estimates to rating_scale {list(RATING_SCALE)} "
            "(algo.test -> predict(clip=True)); RMSE/MAE are of clipped predictions"
        ),
        "metric_crosscheck": "numpy RMSE/MAE equal surprise.accuracy.rmse/mae (rel_tol 1e-9)",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
