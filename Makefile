# skillfund — developer and CI entry points (GNU make).
#
#   make demo          set up .venv, simulate a year of one region, ingest, report
#   make test          set up .venv and run the whole test suite
#   make deps-debian   install the Debian peers the tests use (hledger, promtool)
#
# Nothing here relies on a pre-existing virtualenv: .venv is created from
# $(PY) and the project installed into it whenever pyproject.toml changes.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
DEMO_DATA := demo-data
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help venv demo test bench deps-debian clean distclean

help:
	@echo "make demo         set up $(VENV), simulate, ingest, print balances, rejections and alerts"
	@echo "make test         set up $(VENV) and run the test suite (PYTEST_ARGS='-k x' to narrow)"
	@echo "make bench        run the benchmarks (python -m bench)"
	@echo "make deps-debian  apt-get install hledger and prometheus (promtool) if missing"
	@echo "make clean        remove build and demo artefacts (keeps $(VENV))"
	@echo "make distclean    clean, and remove $(VENV) too"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -d $(VENV) ] && ! $(BIN)/python -c '' >/dev/null 2>&1; then \
		echo "$(VENV) is broken; recreating it"; rm -rf $(VENV); \
	fi
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar off --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e '.[postgres,dev]'
	touch $@

demo: $(STAMP)
	rm -rf $(DEMO_DATA)
	SKILLFUND_DATA_DIR=$(DEMO_DATA) $(BIN)/skillfund demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

# Debian packages used as real peers by the tests. Installs only what is
# missing; needs root (or sudo).
deps-debian:
	@missing=""; \
	command -v hledger >/dev/null 2>&1 || missing="$$missing hledger"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	if [ -z "$$missing" ]; then \
		echo "deps-debian: hledger and promtool already installed"; exit 0; \
	fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	else echo "deps-debian: need root to install:$$missing" >&2; exit 1; fi; \
	echo "deps-debian: installing$$missing"; \
	$$sudo $(APT_GET) update && \
	$$sudo $(APT_GET) install -y --no-install-recommends $$missing

clean:
	rm -rf $(DEMO_DATA) build dist *.egg-info .pytest_cache .hypothesis bench/out
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
