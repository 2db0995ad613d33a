# imtrans developer commands. `make test` and `make demo` build the environment themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Tiny models on a shared 2-core machine run far faster on one intra-op thread
# (../shared/ENVIRONMENT.md §2); W&B never phones home from tests.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 WANDB_MODE=disabled PYTHONHASHSEED=0

.PHONY: install browser test test-fast test-other-kernels demo lint format bench gpu-check clean

install: $(STAMP)

# torch/torchvision and the rest are pinned by constraints.txt; pyproject.toml leaves
# users free to pick their own torch build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing imtrans and its pinned dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt -e ".[metrics,dev,cluster,app]" \
		> $(VENV)/install.log 2>&1 || { tail -40 $(VENV)/install.log; exit 1; }
	touch $(STAMP)

# Debian's Chromium for the web app's browser tests (tests/app/test_browser.py, Playwright drives
# it; they skip without it). Installed with apt-get when /usr/bin/chromium is missing (as root, or
# through sudo); `.ci/run` runs this before `make test`.
APT_LOG := /tmp/imtrans-apt-chromium.log
browser:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"; else \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing Debian's chromium and chromium-driver with apt-get (log: $(APT_LOG))"; \
		{ $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium chromium-driver; } \
			> $(APT_LOG) 2>&1 || { tail -20 $(APT_LOG); echo "make browser: apt-get could not install chromium"; exit 1; }; \
	fi

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

# The GPU checks of issue 30 on one CUDA machine, within 8 minutes (experiments/gpu_check.py):
# every method in bf16-mixed and 16-mixed with compile and channels_last, DDP, bench_speed and
# bench_memory on the GPU; writes experiments/results/gpu_check.md. The speed comparison needs
# the official checkouts: make gpu-check GPU_CHECK_ARGS="--official MUNIT=/path/to/MUNIT ...".
gpu-check: install
	$(BIN)/python experiments/gpu_check.py $(GPU_CHECK_ARGS)

lint: install
	$(BIN)/ruff check imtrans tests experiments
	$(BIN)/ruff format --check imtrans tests experiments

format: install
	$(BIN)/ruff check --fix imtrans tests experiments
	$(BIN)/ruff format imtrans tests experiments

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache
