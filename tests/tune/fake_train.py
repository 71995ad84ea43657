"""A stand-in for ``embedlab <task> train`` (tests of embedlab.tune): parses ``--out`` and the
``--set`` values, writes one ``valid`` trace event per epoch with mrr = lr * epoch / 10 (after a
short sleep, so that the tuner can prune it) and metrics.json with the last value."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    out = Path(argv[argv.index("--out") + 1])
    sets = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--set")
    lr, epochs = float(json.loads(sets["train.lr"])), int(sets.get("train.max_epochs", "5"))
    out.mkdir(parents=True, exist_ok=True)
    trace = out / "trace.jsonl"
    done = sum(1 for line in trace.open() if '"valid"' in line) if trace.exists() else 0
    value = 0.0
    for epoch in range(done + 1, epochs + 1):
        time.sleep(0.3)
        value = lr * epoch / 10
        with trace.open("a") as f:
            f.write(json.dumps({"event": "valid", "epoch": epoch, "mrr": value}) + "\n")
    (out / "metrics.json").write_text(json.dumps({"valid": {"mrr": value}}))


if __name__ == "__main__":
    main(sys.argv[1:])
