# make demo: set up .venv with pinned dependencies and train+evaluate ComplEx on UMLS (shipped data).
# make test: same set-up plus TorchRec (make torchrec), then ruff, mypy and pytest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCHREC_STAMP := $(VENV)/.torchrec

.PHONY: demo test lint typecheck venv torchrec clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,tune,tracking,nmt,onnx]"
	touch $(STAMP)

# TorchRec for row-wise sharded tables (sharding: row_wise; tests/embeddings/test_sharded.py).
# torchrec 1.8.0 and fbgemm-gpu-cpu 1.8.0 go in with --no-deps: torchrec's metadata requires the
# CUDA fbgemm-gpu (~2.7 GB), which writes the same fbgemm_gpu/ folder and breaks the import on a
# CPU torch, and pip cannot drop one dependency of a package. fbgemm-gpu-cpu 1.8.0 is the build
# that loads with torch 2.13.0 (1.9.0 and 1.7.0 do not). The pure-Python dependencies come
# through the `sharding` extra; `pip check` then reports only the absent CUDA fbgemm-gpu.
torchrec: $(TORCHREC_STAMP)

$(TORCHREC_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,tune,tracking,nmt,onnx,sharding]"
	$(BIN)/pip install --quiet --no-deps -c constraints.txt torchrec==1.8.0 fbgemm-gpu-cpu==1.8.0
	$(BIN)/python -c "import torchrec, fbgemm_gpu"
	touch $(TORCHREC_STAMP)

demo: $(STAMP)
	rm -rf runs/demo-umls
	$(BIN)/embedlab kge train --config configs/kge/umls/complex-sce.yaml --out runs/demo-umls

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck torchrec
	$(BIN)/pytest

clean:
	rm -rf $(VENV) runs
