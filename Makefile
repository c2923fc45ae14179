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

.PHONY: demo test test-fast test-families test-gpu gpu-wheels bench format install browser clean

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

# Every family stand-in end to end on Ray (CI runs one, Qwen2.5-VL: IN_CI in tests/demo/test_family_runs.py).
test-families: $(STAMP)
	RAY_VLM_ALL_FAMILIES=1 $(PY) -m pytest -q tests/demo/test_family_runs.py tests/demo/test_families_table.py

# Skips the slow end-to-end tests (CI runs them all through `make test`).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# Every benchmark at full size, one after another (run it on an idle machine: ~20 min on 2 cores);
# each result is appended to benchmarks/results.jsonl and the README's table is made from it.
bench: $(STAMP)
	$(PY) benchmarks/suite.py run; status=$$?; $(PY) benchmarks/suite.py table; exit $$status

# GPU checks (tests/gpu, skipped without CUDA). A bare GPU machine may have python3 with torch and
# transformers only, and no network: `make gpu-wheels` (run here) puts in $(GPU_WHEELS) the wheels
# the torchrun path and pytest need beyond those (they travel with the checkout: 64 MiB a call);
# `make test-gpu` installs them into GPU_PYTHON first, unless GPU_PYTHON is the project's .venv.
GPU_WHEELS ?= dist/gpu-wheels
GPU_PYTHON_VERSION ?= 3.12
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
# .venv's versions. DeepSpeed and what it requires beyond torch and transformers (they bring numpy,
# packaging, tqdm, pyyaml); accelerate (transformers' ZeRO-3 loading requires it); omegaconf
# (configs); pillow (images); matplotlib (rank 0's loss.png); pytest. Not pyarrow (52 MiB; local
# paths need none), Ray, peft, timm or torchvision: the torchrun path imports none of them.
GPU_WHEEL_PINS := deepspeed==0.19.8 hjson==3.1.0 py-cpuinfo==9.0.0 psutil==7.2.2 msgpack==1.2.4 \
  ninja==1.13.2 einops==0.8.2 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
  typing-inspection==0.4.5 accelerate==1.16.0 omegaconf==2.4.0 antlr4-python3-runtime==4.13.2 \
  pillow==13.0.0 matplotlib==3.11.2 contourpy==1.3.3 cycler==0.12.1 fonttools==4.68.0 \
  kiwisolver==1.5.1 pyparsing==3.3.3 python-dateutil==2.9.0.post0 six==1.17.0 pytest==9.2.0 \
  pytest-timeout==2.4.0 pluggy==1.7.0 iniconfig==2.3.1 pygments==2.21.0

# DeepSpeed has an sdist only: built here without ops, a py3-none-any wheel (it JIT-builds its ops
# where it runs); the others are binary wheels for CPython $(GPU_PYTHON_VERSION) on x86_64 Linux.
gpu-wheels:
	rm -rf $(GPU_WHEELS)
	DS_BUILD_OPS=0 python3 -m pip wheel -q --no-deps -w $(GPU_WHEELS) $(filter deepspeed==%,$(GPU_WHEEL_PINS))
	test -f $(GPU_WHEELS)/deepspeed-*-py3-none-any.whl
	python3 -m pip download -q --no-deps --only-binary=:all: -d $(GPU_WHEELS) \
	  --python-version $(GPU_PYTHON_VERSION) --platform manylinux_2_28_x86_64 \
	  --platform manylinux2014_x86_64 $(filter-out deepspeed==%,$(GPU_WHEEL_PINS))
	@bytes=$$(cat $(GPU_WHEELS)/*.whl | wc -c); \
	  echo "$(GPU_WHEELS): $$(ls $(GPU_WHEELS) | wc -l) wheels, $$((bytes >> 20)) MiB (at most 60)"; \
	  test $$bytes -le 62914560

# PIP_BREAK_SYSTEM_PACKAGES: a lent machine's system python3 may be marked externally managed.
test-gpu:
	if [ "$(GPU_PYTHON)" != "$(PY)" ] && [ -d $(GPU_WHEELS) ]; then PIP_BREAK_SYSTEM_PACKAGES=1 \
	  $(GPU_PYTHON) -m pip install -q --no-index --no-deps $(GPU_WHEELS)/*.whl; fi
	$(GPU_PYTHON) -m pytest -q -p no:cacheprovider tests/gpu

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) $(DEMO_OUT)
