# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
# Each sets up what it needs in .venv: torch pinned to the CPU wheel available on this machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: setup espeak-ng test demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# espeak-ng (Debian package) synthesizes the embedded demo corpus (`w2v2 data synth`)
espeak-ng:
	@command -v espeak-ng >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng; } \
	  || echo "could not install espeak-ng with apt-get (the demo corpus needs it)" >&2; \
	else echo "espeak-ng is missing: run 'sudo apt-get install espeak-ng' (the demo corpus needs it)" >&2; fi; }

# Optional fairseq oracle (tests marked `fairseq`): fairseq-fixed built against the installed torch,
# without build isolation or dependency resolution. Tried once per venv (rm $(VENV)/.fairseq to
# retry); when it fails those tests are skipped.
FAIRSEQ ?= fairseq-fixed==0.12.3.1

$(VENV)/.fairseq: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[test,fairseq]" && $(BIN)/pip install -q --no-deps --no-build-isolation "$(FAIRSEQ)" \
	  || echo "optional fairseq oracle not installed: tests marked 'fairseq' will be skipped" >&2
	touch $@

test: setup espeak-ng $(VENV)/.fairseq
	$(BIN)/python -m pytest -q -ra

demo: setup espeak-ng
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) demo
