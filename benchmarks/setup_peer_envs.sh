#!/usr/bin/env bash
# (Re)create the isolated virtualenvs for the peer benchmarks. Idempotent:
# re-running only installs what is missing. The venvs live under .bench-venvs/
# (git-ignored) and never share packages with the project's own .venv.
#
# Usage: benchmarks/setup_peer_envs.sh [all|pykeen|surprise ...]   (default: all)
#
# pykeen   -> .bench-venvs/pykeen   (override: PYKEEN_VENV), used by
#             benchmarks/peer_pykeen_kge.py and peer_pykeen_ns.py.
#             torch is installed FIRST and pinned (a CPU wheel of that version
#             is available to pip here); PyKEEN then gets a constraints file
#             holding the same pin, so its "torch>=2.0" requirement cannot pull
#             a different (CUDA, multi-GB) torch.
# surprise -> .bench-venvs/surprise (override: SURPRISE_VENV), used by
#             benchmarks/peer_surprise_svd.py.
#             scikit-surprise 1.1.5 ships a cp311 manylinux wheel built against
#             numpy 2 (1.1.4 and older are sdist-only and need a
#             Cython/numpy build). The whole dependency set is pinned through a
#             constraints file so a re-run resolves to the same versions.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

PYKEEN_VENV="${PYKEEN_VENV:-$REPO_ROOT/.bench-venvs/pykeen}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
PYKEEN_VERSION="${PYKEEN_VERSION:-1.11.1}"

SURPRISE_VENV="${SURPRISE_VENV:-$REPO_ROOT/.bench-venvs/surprise}"
SURPRISE_VERSION="${SURPRISE_VERSION:-1.1.5}"
SURPRISE_NUMPY_VERSION="${SURPRISE_NUMPY_VERSION:-2.4.6}"
SURPRISE_SCIPY_VERSION="${SURPRISE_SCIPY_VERSION:-1.17.1}"
SURPRISE_JOBLIB_VERSION="${SURPRISE_JOBLIB_VERSION:-1.6.0}"
SURPRISE_PANDAS_VERSION="${SURPRISE_PANDAS_VERSION:-3.1.1}"

TMPFILES=()
cleanup() { if [ "${#TMPFILES[@]}" -gt 0 ]; then rm -f "${TMPFILES[@]}"; fi; }
trap cleanup EXIT

make_venv() {
    if [ ! -x "$1/bin/python" ]; then
        mkdir -p "$(dirname "$1")"
        "$PYTHON" -m venv "$1"
    fi
}

setup_pykeen() {
    local venv="$PYKEEN_VENV" constraints
    make_venv "$venv"
    constraints="$(mktemp)"
    TMPFILES+=("$constraints")
    echo "torch==$TORCH_VERSION" > "$constraints"

    "$venv/bin/pip" install --quiet "torch==$TORCH_VERSION"
    "$venv/bin/pip" install --quiet -c "$constraints" "pykeen==$PYKEEN_VERSION"
    "$venv/bin/pip" check
    "$venv/bin/python" -c "import pykeen, torch; print('pykeen', pykeen.get_version(), 'torch', torch.__version__)"
}

setup_surprise() {
    local venv="$SURPRISE_VENV" constraints
    make_venv "$venv"
    constraints="$(mktemp)"
    TMPFILES+=("$constraints")
    cat > "$constraints" <<EOF
numpy==$SURPRISE_NUMPY_VERSION
scipy==$SURPRISE_SCIPY_VERSION
joblib==$SURPRISE_JOBLIB_VERSION
pandas==$SURPRISE_PANDAS_VERSION
cloudpickle==3.1.2
python-dateutil==4.0.0
tzdata==2026.6
EOF
    # numpy first (pinned), so that a source build of scikit-surprise (no
    # wheel for this platform) compiles against the same numpy it runs with.
    "$venv/bin/pip" install --quiet -c "$constraints" numpy
    "$venv/bin/pip" install --quiet -c "$constraints" \
        "scikit-surprise==$SURPRISE_VERSION" pandas
    "$venv/bin/pip" check
    "$venv/bin/python" -c "import surprise, numpy, pandas; print('scikit-surprise', surprise.__version__, 'numpy', numpy.__version__, 'pandas', pandas.__version__)"
}

if [ "$#" -eq 0 ]; then
    set -- all
fi
for target in "$@"; do
    case "$target" in
        all) setup_pykeen; setup_surprise ;;
        pykeen) setup_pykeen ;;
        surprise) setup_surprise ;;
        *) echo "usage: $0 [all|pykeen|surprise ...]" >&2; exit 2 ;;
    esac
done
