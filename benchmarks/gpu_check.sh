#!/usr/bin/env bash
# GPU check (run on a machine with a CUDA device, e.g. the lent device machine): the test suite's
# device-marked tests, then one short WN18RR ComplEx+SCE run on cuda in fp32 and in bf16,
# printing their numbers. Fits in about 8 minutes. Usage (repository root, data available):
#   EMBEDLAB_DATA_DIR=/path/to/datasets bash benchmarks/gpu_check.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-runs/gpu-check}}"
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$OUT"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
timeout 180 "$PY" -m pytest -m device -q tests 2>&1 | tail -5
for precision in fp32 bf16; do
  timeout 150 "$PY" -m embedlab kge train --config configs/kge/wn18rr/complex-sce.yaml \
    --set device=cuda --set train.precision="$precision" --set train.max_minutes=1.5 \
    --set eval.every=1000 --overwrite --no-progress --out "$OUT/wn18rr-complex-$precision" || true
  "$PY" - "$OUT/wn18rr-complex-$precision/metrics.json" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))
t = m["timing"]
print(json.dumps({"run": sys.argv[1], "precision": t["precision"], "device": t["device"],
                  "epochs": t["epochs"], "rows_per_s": round(t["rows_per_s"]),
                  "test_mrr": round(m["test"]["mrr"], 4),
                  "test_seconds": round(m["test"]["seconds"], 2)}))
PYEOF
done
