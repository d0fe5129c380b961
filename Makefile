# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
# Each sets up what it needs in .venv: torch pinned to the CPU wheel available on this machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: setup espeak-ng chromium kenlm test demo clean

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

# chromium (Debian package): the headless browser of the `w2v2 serve` page test (tests/test_serve_page.py)
chromium:
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
	  || echo "could not install chromium with apt-get (the serve page test will be skipped)" >&2; \
	else echo "chromium is missing: run 'sudo apt-get install chromium' (the serve page test needs it)" >&2; fi; }

# Optional fairseq oracle (tests marked `fairseq`): fairseq-fixed built against the installed torch,
# without build isolation or dependency resolution. Tried once per venv (rm $(VENV)/.fairseq to
# retry); when it fails those tests are skipped.
FAIRSEQ ?= fairseq-fixed==0.12.3.1

$(VENV)/.fairseq: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[test,fairseq]" && $(BIN)/pip install -q --no-deps --no-build-isolation "$(FAIRSEQ)" \
	  || echo "optional fairseq oracle not installed: tests marked 'fairseq' will be skipped" >&2
	touch $@

# KenLM (optional: `w2v2 lm build` uses lmplz when present; tests compare the built-in estimator
# with it): lmplz and build_binary built from the kenlm sdist into $(VENV)/bin (Boost and cmake by
# apt-get when root), then the kenlm Python module. Tried once per venv (rm $(VENV)/.kenlm to
# retry); when it fails the comparison tests are skipped. Log: $(VENV)/kenlm-build.log
$(VENV)/.kenlm: scripts/install_kenlm.sh | $(VENV)/.installed
	bash scripts/install_kenlm.sh $(VENV) > $(VENV)/kenlm-build.log 2>&1 \
	  || echo "KenLM not built (see $(VENV)/kenlm-build.log): lmplz comparison tests will be skipped" >&2
	$(BIN)/pip install -q -e ".[test,kenlm]" >> $(VENV)/kenlm-build.log 2>&1 \
	  || echo "kenlm Python module not built (see $(VENV)/kenlm-build.log): its tests will be skipped" >&2
	touch $@

kenlm: $(VENV)/.kenlm

test: setup espeak-ng chromium $(VENV)/.fairseq $(VENV)/.kenlm
	$(BIN)/python -m pytest -q -ra

demo: setup espeak-ng $(VENV)/.kenlm
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) demo
