# Everything runs in .venv, made by `make install`; .venv-pinned is the competition
# baseline's own environment (numpy 1.26, numba 0.58, ...: constraints/baseline.txt), where
# `make test` runs the suite a second time.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PINNED := .venv-pinned
EXTRAS := .[torch,test,dask,s3]
# A CPU build; an unpinned torch pulls a multi-GB CUDA build.
TORCH := torch==2.13.0
# The training stacks' own releases, the oracles of tests/test_stacks_*.py, without their
# dependencies (two more OpenCV wheels, paddlepaddle's, a torchvision built for CUDA): what their
# target code imports is in the test extra.
STACK_ORACLES := paddleocr==2.10.0 python-doctr==1.1.0
STORE ?= data/targets.zarr
JOBS ?=

.PHONY: install install-pinned test test-all test-pinned soak lint bench baseline-env metrics check-uv precompute verify info example clean

install: install-pinned
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e "$(EXTRAS)" "$(TORCH)"
	$(BIN)/python -m pip install --no-deps $(STACK_ORACLES)

# The baseline pins both OpenCV wheels: opencv-python 4.8.1.78 and the headless 4.11.0.86 that
# albumentations brings.
install-pinned:
	$(PYTHON) -m venv $(PINNED)
	$(PINNED)/bin/python -m pip install -c constraints/baseline.txt -e "$(EXTRAS)" "$(TORCH)" opencv-python
	$(PINNED)/bin/python -m pip install --no-deps $(STACK_ORACLES)

# What a change most often breaks (maps exact, parity, the store, collate, CLI messages), a
# tenth of the property tests' examples: under 2 minutes on 2 cores.
QUICK_SKIP := --ignore=tests/test_faults.py --ignore=tests/test_dask.py --ignore=tests/test_object_storage.py \
	--ignore=tests/test_hardening.py
test:
	$(BIN)/python -m pytest -p no:cacheprovider $(QUICK_SKIP)

# Everything, in both environments, every property test's full count: what CI runs (.ci/run).
test-all: test-pinned
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest

# Under the baseline's pins: all but the fault injection and Dask, which exercise the storage
# layers (the same zarr and fsspec code in both environments) and would double CI's time.
test-pinned:
	HYPOTHESIS_PROFILE=ci $(PINNED)/bin/python -m pytest -p no:cacheprovider --ignore=tests/test_faults.py --ignore=tests/test_dask.py

# The long runs: kills and damage at random, and a fault at every write point on S3 too.
soak:
	$(BIN)/python -m pytest -m slow -s tests/test_soak.py
	FAULTS_EVERY=1 $(BIN)/python -m pytest -s tests/test_faults.py -k s3

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench:
	$(BIN)/python -m benchmarks $(if $(BASELINE),--baseline $(BASELINE))

# The competition baseline's own environment for its training code (BASELINE: its checkout):
# its pins (albumentations among them: its transforms), the packages its Lightning modules import, and ocr-targets, for `make bench BASELINE=...`
# and `make metrics BASELINE=...`. torch: any CPU-capable build with its torchvision.
BASELINE_TORCH ?= torch==2.14.1 torchvision==0.29.1
baseline-env:
	$(PYTHON) -m venv .venv-baseline
	.venv-baseline/bin/python -m pip install -c constraints/baseline.txt -r constraints/baseline-training.txt \
		$(BASELINE_TORCH) opencv-python albumentations -e .

# The README's uv route against the baseline's own uv.lock: nothing it locks may move.
check-uv:
	$(BIN)/python -m pip install -q uv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks.uv_route $(BASELINE)

# Its trainer.validate (DBNet, random seeded weights) with and without the README's YAML blocks.
metrics:
	.venv-baseline/bin/python -m benchmarks.baseline $(BASELINE) metrics

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
