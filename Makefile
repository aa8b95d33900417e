# Switchyard. `make run` and `make test` each install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-unit test-integration protos lint bench migrate clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/switchyard up

test: install
	$(BIN)/pytest -q tests

test-unit: install
	$(BIN)/pytest -q tests/unit

test-integration: install
	$(BIN)/pytest -q tests/integration

protos: install
	$(BIN)/python tools/gen_protos.py

lint: install
	$(BIN)/ruff check services tests tools migrations
	$(BIN)/ruff format --check services tests tools migrations
	$(BIN)/mypy

bench: install
	$(BIN)/python -m tests.benchmarks.run

migrate: install
	$(BIN)/switchyard migrate

clean:
	rm -rf $(VENV) .switchyard
