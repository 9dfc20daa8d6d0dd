# seg: `make demo` trains on the embedded synthetic data; `make test` runs the test suite.
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU machines need the torch/torchvision pair pinned here; on a GPU box: make install CONSTRAINTS=
CONSTRAINTS ?= scripts/constraints-cpu.txt
STAMP := $(VENV)/.installed-stamp
PROFILE ?= quick
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo train test lint ablations sweep-lr bench clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install seg with its dev tools

$(STAMP): pyproject.toml $(wildcard $(CONSTRAINTS))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]" $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	touch $(STAMP)

demo: install ## train a small UNet on synthetic pets (CPU, ~35 s of training)
	$(PY) -m seg.train experiment=demo $(ARGS)

train: install ## train with the default config; pass overrides in ARGS="model=resnet34_unet ..."
	$(PY) -m seg.train $(ARGS)

test: install ## run the test suite
	$(PY) -m pytest -q $(ARGS)

lint: install ## ruff
	$(PY) -m ruff check seg tests scripts

ablations: install ## augmentation, scheduler and architecture ablations over seeds, then the report
	bash scripts/ablations.sh $(PROFILE) $(ARGS)

sweep-lr: install ## Optuna learning-rate search (hparams_search=lr_optuna)
	$(PY) -m seg.train -m hparams_search=lr_optuna $(ARGS)

bench: install ## speed: matmul ceiling, model and loader throughput, epoch split, sweep overhead
	$(PY) scripts/bench.py $(ARGS)

clean: ## remove outputs, caches and the generated data (keeps .venv)
	rm -rf outputs multirun wandb data/synthetic-pets data/cache .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
