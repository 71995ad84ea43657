#!/usr/bin/env bash
# (Re)create the isolated virtualenv for the PyKEEN peer benchmark
# (benchmarks/peer_pykeen_kge.py). Idempotent: re-running only installs what is
# missing. The venv lives under .bench-venvs/ (git-ignored) and never shares
# packages with the project's own .venv.
#
# torch is installed FIRST and pinned (a CPU wheel of that version is available
# to pip here); PyKEEN then gets a constraints file holding the same pin, so its
# "torch>=2.0" requirement cannot pull a different (CUDA, multi-GB) torch.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PYKEEN_VENV:-$REPO_ROOT/.bench-venvs/pykeen}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
PYKEEN_VERSION="${PYKEEN_VERSION:-1.11.1}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"

"$VENV/bin/pip" install --quiet "torch==$TORCH_VERSION"
"$VENV/bin/pip" install --quiet -c "$CONSTRAINTS" "pykeen==$PYKEEN_VERSION"
"$VENV/bin/pip" check
"$VENV/bin/python" -c "import pykeen, torch; print('pykeen', pykeen.get_version(), 'torch', torch.__version__)"
