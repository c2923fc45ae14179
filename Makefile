# Two commands for a new user: `make demo` and `make test`. Each creates .venv when missing.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
DEMO_OUT ?= demo_out
LOCAL_TORCH ?= torch==2.14.1 torchvision==0.29.1
# The venv's tools first, as an activated venv: DeepSpeed JIT-builds its CPU ops (shm comm, CPU
# Adam) with the first `ninja` on PATH, and two ninjas (the venv's 1.13, Debian's 1.11) hash the
# build commands differently, so every process that saw the other one rebuilt them (~30-50 s each).
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test test-fast test-families test-gpu bench format install browser clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# No GPU: take the torch/torchvision pair that lies on this machine's disk (no download).
	# torch 2.13.0+cpu alone has no importable torchvision, which Perception LM needs.
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q $(LOCAL_TORCH); fi
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ray-vlm demo --out $(DEMO_OUT)

# The HTML report test opens the report in Debian's headless chromium.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (the HTML report test opens the report in it)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q --durations=25

# Every family stand-in end to end on Ray (CI runs two: IN_CI in tests/demo/test_family_runs.py).
test-families: $(STAMP)
	RAY_VLM_ALL_FAMILIES=1 $(PY) -m pytest -q tests/demo/test_family_runs.py tests/demo/test_families_table.py

# Skips the slow end-to-end tests (CI runs them all through `make test`).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# Every benchmark at full size, one after another (run it on an idle machine: ~20 min on 2 cores);
# each result is appended to benchmarks/results.jsonl and the README's table is made from it.
bench: $(STAMP)
	$(PY) benchmarks/suite.py run; status=$$?; $(PY) benchmarks/suite.py table; exit $$status

# GPU checks (tests/gpu, skipped without CUDA): the project's .venv when there is one, else the
# machine's python3 (a GPU machine may have torch, transformers and DeepSpeed but no Ray).
test-gpu:
	$(if $(wildcard $(PY)),$(PY),python3) -m pytest -q -p no:cacheprovider tests/gpu

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) $(DEMO_OUT)
