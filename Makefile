# Everything the project needs is installed here, into .venv, from its own files.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install train test test-kernels test-slow lint format bench figures mutants clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,compare]'
	touch $(STAMP)

install: $(STAMP)

## The main job: adversarial training on the offline quickstart data (< 3 min on 2 cores).
train: $(STAMP)
	$(PY) -m ladlit.train experiment=quickstart

## The test suite (3.5-7 min on 2 cores with AVX-512 or AMX, ~10 with AVX2 only; RESULTS 11.6): one single-threaded worker per core, each test file on one
## worker (its session fixtures trained once there); slow and GPU checks are excluded. A worker that
## crashes (a segfault in a native kernel) fails its test and is not replaced: xdist would rerun the
## file on fresh workers and, seen once, wait forever for one.
XDIST := -n 2 --dist loadfile --max-worker-restart=0
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q $(XDIST)

## The tests that compare two computations' floats (marked `numerics`: compiled vs eager, folded vs
## plain, DDP vs one process, ladlit's AutoAttack vs the reference, ...) under other CPU kernels than
## this machine's: ATen's AVX2 and scalar kernels (torch.compile follows), then oneDNN capped at
## AVX2 (compiled code left out: the cap aborts it). Each kernel choice gets its own inductor cache:
## one built for another ISA crashes. What a test allows must hold on every CPU kind (RESULTS 11).
NUMERICS := -m "numerics and not slow and not gpu" -p no:cacheprovider
KERNEL_CACHE := $(or $(TMPDIR),/tmp)/ladlit-inductor
test-kernels: $(STAMP)
	ATEN_CPU_CAPABILITY=avx2 TORCHINDUCTOR_CACHE_DIR=$(KERNEL_CACHE)-avx2 OMP_NUM_THREADS=1 $(PY) -m pytest -q $(XDIST) $(NUMERICS)
	ATEN_CPU_CAPABILITY=default TORCHINDUCTOR_CACHE_DIR=$(KERNEL_CACHE)-default OMP_NUM_THREADS=1 $(PY) -m pytest -q $(XDIST) $(NUMERICS)
	ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1 $(PY) -m pytest -q $(XDIST) $(NUMERICS) --ignore tests/test_compile.py

## Style: ruff lint and format check (CI runs it); `make format` rewrites in place.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Real-data checks (need ../shared/data/cifar10-jpeg.tar.gz).
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

## Prove the tests by mutation: deliberate bugs, one at a time, each must fail a test (24 minutes for
## 169 of them, 2026-12-04, beside two study lanes).
mutants: $(STAMP)
	$(PY) tests/mutants.py

bench: $(STAMP)
	$(PY) experiments/bench_step.py

## The study's figures in docs/figures, drawn again from the committed records (a test checks they are).
figures: $(STAMP)
	$(PY) experiments/cpu_study_figures.py
	$(PY) experiments/depth_figures.py

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
