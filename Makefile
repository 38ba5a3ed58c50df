# Everything runs in .venv, made by `make install`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A CPU build; an unpinned torch pulls a multi-GB CUDA build.
TORCH := torch==2.13.0
STORE ?= data/targets.zarr
JOBS ?=

.PHONY: install test soak lint bench precompute verify info example clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[torch,test,dask,s3]" "$(TORCH)"

test:
	$(BIN)/python -m pytest

soak:
	$(BIN)/python -m pytest -m slow -s tests/test_soak.py

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench:
	$(BIN)/python -m benchmarks

precompute:
	$(BIN)/ocr-targets precompute --images data/images --annotations data/annotations.json --out $(STORE) --with-images $(if $(JOBS),--jobs $(JOBS))

verify:
	$(BIN)/ocr-targets verify $(STORE)

info:
	$(BIN)/ocr-targets info $(STORE)

example: precompute
	$(BIN)/python examples/validation_loop.py --store $(STORE)

clean:
	rm -rf $(STORE) $(STORE).failures.json .pytest_cache .hypothesis
