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

# The microblog: migrate ./microblog.db (or $DATABASE_URL), seed it when empty, serve it.
# A random development secret is made once and kept in instance/ (ignored by git).
MICROBLOG := $(BIN)/tablerest --app examples/microblog/microblog/app.py
DATABASE_URL ?= sqlite:///$(CURDIR)/microblog.db
SECRET_FILE := instance/secret_key

$(SECRET_FILE):
	mkdir -p instance
	$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@
	chmod 600 $@

run: venv $(SECRET_FILE)
	export DATABASE_URL='$(DATABASE_URL)' TABLEREST_SECRET_KEY="$$(cat $(SECRET_FILE))" && \
	$(MICROBLOG) db upgrade && \
	$(MICROBLOG) db seed && \
	exec $(MICROBLOG) serve --host $(HOST) --port $(PORT)

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
