# Lockgate: the two commands. Both create their own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck contracts unit venv crds bench clean e2e-kind

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,test]'
	touch $(STAMP)

venv: $(STAMP)

## make demo: start the embedded Kubernetes API and tell the Lockgate story (no cluster needed)
demo: $(STAMP)
	$(BIN)/lockgate demo

## make test: lint, types, layer contracts and the tests
test: lint typecheck contracts unit

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest

crds: $(STAMP)
	$(BIN)/lockgate crds --write

bench: $(STAMP)
	$(BIN)/python bench/gate_engine.py

## make e2e-kind: kind cluster (kind-config.yaml), image, chart, acceptance scenario (needs docker, kind, helm)
e2e-kind:
	bash hack/e2e-kind.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
