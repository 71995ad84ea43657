"""Training throughput of an NMT config through the real loop, without the final evaluation.

    EMBEDLAB_DATA_DIR=../shared/datasets nice -n 19 .venv/bin/python benchmarks/nmt_throughput.py \
        configs/nmt/multi30k/transformer-small.yaml /tmp/nmt-measure/run \
        train.max_minutes=2 train.max_epochs=1 train.num_threads=1 eval.valid_bleu_sentences=0

Prints JSON: parameters, batches per epoch, steps done, target tokens/s, seconds per step, the
valid NLL after those steps. The run directory is overwritten. ``--torch-dropout`` (first
argument) puts torch's ``nn.Dropout`` back in place of the model's ``Dropout16`` modules, the
peer of ``benchmarks/nmt_speed_ab.py --torch-dropout``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from embedlab.config.io import build_typed_config
from embedlab.embeddings.fast_dropout import Dropout16, swap_dropouts
from embedlab.nmt import run as nmt_run
from embedlab.nmt.config import NmtConfig
from embedlab.nmt.data import load_splits
from embedlab.nmt.load import build_model
from embedlab.nmt.objective import InverseSqrtSchedule
from embedlab.nmt.task import NmtTask
from embedlab.training.loop import Loop
from embedlab.training.run_dir import RunPaths, prepare_run_dir


def main(argv: list[str]) -> None:
    plain_dropout = bool(argv) and argv[0] == "--torch-dropout"
    argv = argv[1:] if plain_dropout else argv
    cfg = build_typed_config(NmtConfig, path=Path(argv[0]), overrides=argv[2:])
    out = Path(argv[1])
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    start = time.perf_counter()
    raw = load_splits(cfg)
    prepare_run_dir(out, cfg, overwrite=True)
    vocab, splits, _ = nmt_run._encoded(cfg, out, raw)
    data_seconds = time.perf_counter() - start
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, vocab)
    replaced = (
        swap_dropouts(model, source=Dropout16, target=torch.nn.Dropout) if plain_dropout else 0
    )
    task = NmtTask(model=model, splits=splits, vocab=vocab, config=cfg)
    schedule = InverseSqrtSchedule(
        lr=cfg.train.lr, warmup_steps=cfg.train.warmup_steps, batches_per_epoch=task.num_batches()
    )
    loop = Loop(
        task=task, config=cfg.train, eval_every=cfg.eval.every, paths=RunPaths(out),
        device=torch.device("cpu"), callbacks=[schedule], progress=False,
    )  # fmt: skip
    loop.run(seed=cfg.seed)
    events = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    epoch = next(e for e in events if e["event"] == "epoch")
    valid = [e for e in events if e["event"] == "valid"]
    report = {
        "threads": torch.get_num_threads(),
        "dropout": "torch nn.Dropout" if plain_dropout else "Dropout16",
        "dropouts_replaced": replaced,
        "params": sum(p.numel() for p in model.parameters()),
        "vocab": len(vocab),
        "batches_per_epoch": task.num_batches(),
        "data_and_vocab_s": data_seconds,
        "steps": epoch["batches"],
        "target_tokens": epoch["rows"],
        "train_s": epoch["epoch_seconds"],
        "target_tokens_per_s": epoch["rows_per_s"],
        "s_per_step": epoch["epoch_seconds"] / epoch["batches"],
        "valid_loss": valid[-1]["loss"] if valid else None,
        "valid_eval_s": valid[-1]["eval_seconds"] if valid else None,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
