# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
# Each sets up what it needs in .venv: torch pinned to the CPU wheel available on this machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: setup test demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(BIN)/python -m pytest -q -ra

demo: setup
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) demo
