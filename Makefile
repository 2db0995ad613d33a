# imtrans developer commands. `make test` and `make demo` build the environment themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Tiny models on a shared 2-core machine run far faster on one intra-op thread
# (../shared/ENVIRONMENT.md §2); W&B never phones home from tests.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 WANDB_MODE=disabled PYTHONHASHSEED=0

.PHONY: install test test-fast test-other-kernels demo lint format bench clean

install: $(STAMP)

# torch/torchvision and the rest are pinned by constraints.txt; pyproject.toml leaves
# users free to pick their own torch build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing imtrans and its pinned dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt -e ".[metrics,dev,cluster]" \
		> $(VENV)/install.log 2>&1 || { tail -40 $(VENV)/install.log; exit 1; }
	touch $(STAMP)

test: install
	$(TEST_ENV) $(BIN)/python -m pytest -q --durations=15

# The tests that compare with numbers recorded on another machine, with another CPU's kernels
# (oneDNN and ATen limited to AVX2): a tolerance too tight for float32 reordering fails here.
test-other-kernels: install
	ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 $(TEST_ENV) $(BIN)/python -m pytest -q -m recorded

test-fast: install
	$(TEST_ENV) $(BIN)/python -m pytest -q -m "not slow"

# Quickstart: a small MUNIT on the procedural shapes data, 64 px, CPU, about 5 minutes.
demo: install
	OMP_NUM_THREADS=2 $(BIN)/python -m imtrans.run experiment=munit_quickstart

lint: install
	$(BIN)/ruff check imtrans tests experiments
	$(BIN)/ruff format --check imtrans tests experiments

format: install
	$(BIN)/ruff check --fix imtrans tests experiments
	$(BIN)/ruff format imtrans tests experiments

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache
