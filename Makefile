# seg: `make demo` trains on the embedded synthetic data; `make test` runs the test suite.
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU machines need the torch/torchvision pair pinned here; on a GPU box: make install CONSTRAINTS=
CONSTRAINTS ?= scripts/constraints-cpu.txt
STAMP := $(VENV)/.installed-stamp
PROFILE ?= quick
# `make test` runs this many pytest workers (pytest-xdist): the suite's CLI processes are mostly single-threaded
TEST_WORKERS ?= 2
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo train test test-cluster lint ablations sweep-lr bench bench-pruners wandb-sync clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install seg with its dev tools

$(STAMP): pyproject.toml $(wildcard $(CONSTRAINTS))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,smp]" $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	touch $(STAMP)

demo: install ## train a small UNet on synthetic pets (CPU, ~35 s of training)
	$(PY) -m seg.train experiment=demo $(ARGS)

train: install ## train with the default config; pass overrides in ARGS="model=resnet34_unet ..."
	$(PY) -m seg.train $(ARGS)

test: install ## run the test suite (TEST_WORKERS processes, one test file each at a time; 0: in this process)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(ARGS)

test-cluster: install ## SLURM and Ray on this machine (root or sudo, apt): run tests/cluster, then stop them
	@echo "== test-cluster installs, if missing: Debian's slurm-wlm munge slurmdbd mariadb-server (apt-get), the"
	@echo "   [slurm] extra into $(VENV), Ray into the overlay $(VENV)/overlay-ray; starts munged, mariadbd, slurmdbd,"
	@echo "   slurmctld, slurmd (scripts/cluster/slurm_up.sh) and a Ray head (the tests); stops them all at the end"
	$(PY) -c "import hydra_plugins.hydra_submitit_launcher.submitit_launcher" 2>/dev/null || \
	  $(PY) -m pip install --quiet -e ".[slurm]" $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	@start=$$(date +%s); sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	state=$${SEG_SLURM_STATE:-/tmp/seg-slurm}; clusters=slurm; \
	if bash scripts/cluster/ray_venv.sh $(VENV)/overlay-ray $(VENV); then clusters=slurm,ray; \
	else echo "== Ray could not be installed: tests/cluster/test_ray.py will be skipped"; fi; \
	ray_before=$$(ps -C raylet -o pid= | wc -l); \
	trap '$$sudo env SEG_SLURM_STATE=$$state bash scripts/cluster/slurm_down.sh; \
	  if [ "$$ray_before" = 0 ] && ps -C raylet >/dev/null; then \
	    echo "== stopping the Ray instance the tests left"; $(VENV)/overlay-ray/bin/ray stop --force >/dev/null; fi; \
	  echo "== test-cluster: $$(( $$(date +%s) - start )) s"' EXIT; \
	trap 'exit 130' INT TERM; \
	$$sudo env SEG_SLURM_STATE=$$state bash scripts/cluster/slurm_up.sh && \
	SEG_CLUSTER=$$clusters SEG_SLURM_STATE=$$state SLURM_CONF=$$state/slurm.conf \
	  SEG_RAY_PYTHON=$(abspath $(VENV))/overlay-ray/bin/python $(PY) -m pytest -v tests/cluster $(ARGS)

lint: install ## ruff
	$(PY) -m ruff check seg tests scripts

ablations: install ## augmentation, scheduler and architecture ablations over seeds (one study, resumable), then the report
	$(PY) -m seg.train -m study=ablations profile=$(PROFILE) $(ARGS)

sweep-lr: install ## Optuna learning-rate search (hparams_search=lr_optuna)
	$(PY) -m seg.train -m hparams_search=lr_optuna $(ARGS)

bench: install ## speed: matmul ceiling, model and loader throughput, epoch split, sweep overhead
	$(PY) scripts/bench.py $(ARGS)

bench-pruners: install ## Optuna pruners on the real sample: compute saved vs best val Dice (hours on CPU; ARGS=--trials 3 ...)
	$(PY) scripts/bench_pruners.py $(ARGS)

wandb-sync: install ## upload every offline W&B run under outputs/ (runs, sweeps, evals, reports); ARGS=--dry-run lists them
	find $(or $(SEG_ROOT),.)/outputs -type d -name 'offline-run-*' -prune -print0 | xargs -0 -r $(VENV)/bin/wandb sync $(ARGS)

clean: ## remove outputs, caches and the generated data (keeps .venv)
	rm -rf outputs multirun wandb data/synthetic-pets data/cache .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
