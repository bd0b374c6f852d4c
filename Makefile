# The two commands: `make demo` (the six CLIs end to end on real data) and `make test` (lint, types, tests).
# Both create or reuse .venv from requirements/lock.txt and the repository's own packages.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
OUT ?= demo-out
QUICK ?= 0
PACKAGES := schemas packages/stride-core packages/stride-model packages/stride-data packages/stride-stats \
	packages/stride-train packages/stride-generate packages/stride-eval packages/stride-plot
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))
STAMP := $(VENV)/.stride-installed
MODULES := stride_contracts stride_core stride_model stride_data stride_stats stride_train stride_generate stride_eval stride_plot

.PHONY: env demo test lint typecheck unit lock schemas clean

env: $(STAMP)

$(STAMP): requirements/lock.txt $(PYPROJECTS)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or pass PYTHON=..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" OUT="$(OUT)" QUICK="$(QUICK)" bash scripts/demo.sh

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(addprefix -p ,$(MODULES))

unit: $(STAMP)
	STRIDE_PROGRESS=0 $(BIN)/python -m pytest -q

schemas: $(STAMP)
	$(BIN)/stride-contracts-export

lock: $(STAMP)
	{ echo "# Exact versions of every third-party package STRIDE installs (runtime, tests, lint)."; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/pip freeze --exclude-editable | grep -v -E "^(stride-|-e )" | sed 's/+cpu$$//'; } > requirements/lock.txt

clean:
	rm -rf $(OUT) .mypy_cache .ruff_cache

.PHONY: bench-train-step
bench-train-step: $(STAMP) bench-peak
	nice -n 10 $(BIN)/python bench/train_step.py $(TRAIN_STEP_ARGS)

.PHONY: bench-quality
bench-quality: $(STAMP)
	$(BIN)/python bench/quality.py $(QUALITY_ARGS)

.PHONY: bench-loader bench-stats
bench-loader: $(STAMP)
	$(BIN)/python bench/loader.py

bench-stats: $(STAMP)
	$(BIN)/python bench/stats.py

.PHONY: bench-dry-case
bench-dry-case: $(STAMP)
	$(BIN)/python bench/dry_case.py $(DRY_CASE_ARGS)

# Cluster and release checks (issue 12; README "Running on a cluster"). test-slurm and the image targets
# start daemons (slurmctld/slurmd/munged, dockerd) as root when none runs, and stop what they started.
.PHONY: test-slurm images test-images sif
test-slurm: $(STAMP)
	STRIDE_PROGRESS=0 $(BIN)/python -m pytest -q -s ci/tests/test_slurm_chain.py

images: $(STAMP)
	PIP=$(CURDIR)/$(BIN)/pip PYTHON=$(CURDIR)/$(BIN)/python bash ci/with-docker.sh ci/make-images.sh $(IMAGES_ARGS)

test-images: $(STAMP)
	PYTHON=$(CURDIR)/$(BIN)/python bash ci/with-docker.sh ci/test-images.sh

sif: $(STAMP)
	PYTHON=$(CURDIR)/$(BIN)/python bash ci/with-docker.sh ci/make-sif.sh $(SIF_CLIS)

# Pants 2.17.1 (PyPI, CPython 3.9) on the repository: tailor --check, list, peek, dependencies, test ::, package ::
# and the wheels against the pyproject.toml files (ci/pants-check.sh; tens of minutes, not in make test).
.PHONY: pants-check
pants-check: $(STAMP)
	PYTHON=$(CURDIR)/$(BIN)/python nice -n 10 bash ci/pants-check.sh

.PHONY: bench-sampler
bench-sampler: $(STAMP)
	nice -n 10 $(BIN)/python bench/sampler.py $(SAMPLER_ARGS)

.PHONY: bench-eval-speed
bench-eval-speed: $(STAMP)
	nice -n 10 $(BIN)/python bench/eval_speed.py $(EVAL_SPEED_ARGS)

# The device's measured fp32/bf16 peak (bench/results/peak.json); bench-train-step runs it first for its MFU.
.PHONY: bench-peak
bench-peak: $(STAMP)
	nice -n 10 $(BIN)/python bench/peak.py $(PEAK_ARGS)

.PHONY: bench-tiling-seams
bench-tiling-seams: $(STAMP)
	nice -n 10 $(BIN)/python bench/tiling_seams.py $(TILING_SEAMS_ARGS)

# Issue 9's bar on the perfect-prognosis pair, both configurations (PP_CASES=tp runs one): AROME tp <- ARPEGE
# t2m (t2m) and <- AROME tp coarsened 4x + ARPEGE t2m (tp); bench/results/pp_case.json holds one entry each.
PP_CASES ?= t2m tp
.PHONY: bench-pp-case
bench-pp-case: $(STAMP)
	for case in $(PP_CASES); do nice -n 10 $(BIN)/python bench/pp_case.py --case $$case $(PP_CASE_ARGS) || exit 1; done
