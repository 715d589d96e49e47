# The README's commands. `make demo` sets up .venv on first use, then runs the main job;
# `make test` is what CI runs (.ci/run).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast llm-server lint bench clean

setup: $(STAMP)

# torch first, pinned: its CPU wheel lies on the machine, and an unpinned torch pulls a CUDA build.
# Then the framework, then the example packs (their own distribution, found by entry points).
$(STAMP): pyproject.toml examples/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python -m pip install -q -e examples
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/swarm demo

# A real OpenAI-compatible server (llama.cpp + SmolLM2-135M) in its own venv, for the LLM
# integration tests. The first build compiles llama.cpp (minutes); later runs reuse it.
llm-server:
	bash scripts/llm_server.sh build

# Everything, the real LLM server included (required: its tests fail rather than skip).
test: $(STAMP) llm-server
	SWARM_REQUIRE_LLM_SERVER=1 $(BIN)/python -m pytest -q

# The inner loop: no slow tests, and the LLM server tests skip if it was never built.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# ruff, mypy, and the import contracts of ARCHITECTURE.md (tests/test_layers.py runs them too).
lint: $(STAMP)
	$(BIN)/ruff check swarm tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/scheduler.py
	$(BIN)/python benchmarks/router.py

clean:
	rm -rf $(VENV) .llm-venv storage
