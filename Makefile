# The Makefile runs exactly what CI runs: `.ci/run` installs system packages, then `make test`.

HOST ?= 127.0.0.1
PORT ?= 5000
PYTHON ?= python3
PYTEST_ARGS ?=

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Directories a fresh clone may not have yet (git keeps no empty directories).
LINT_PATHS := $(wildcard src tests examples benchmarks)

.PHONY: venv test lint bench run clean distclean

venv: $(STAMP)

# Re-install only when pyproject.toml changed since the last successful install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --quiet -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m benchmarks

run:
	@echo "make run arrives with the microblog"; exit 1

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
