# The Makefile runs exactly what CI runs: `.ci/run` installs system packages, then `make test`.

HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2
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
	@test -x $(BIN)/python || echo "Creating the virtualenv $(VENV)/ ..."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing tablerest and its dev tools into $(VENV)/ (a minute or two the first time) ..."
	$(BIN)/python -m pip install --disable-pip-version-check --quiet -e '.[dev]'
	touch $(STAMP)
	@echo "Installed."

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m benchmarks

# The microblog: migrate ./microblog.db (or $DATABASE_URL), seed it when empty, serve it with
# gunicorn, as in production (WORKERS processes). A random development secret is made once and
# kept in instance/ (ignored by git). The console on the same app and database (README):
#   export DATABASE_URL=sqlite:///$PWD/microblog.db TABLEREST_SECRET_KEY="$(cat instance/secret_key)"
#   .venv/bin/tablerest --app examples/microblog/microblog/app.py routes
MICROBLOG := $(BIN)/tablerest --app examples/microblog/microblog/app.py
DATABASE_URL ?= sqlite:///$(CURDIR)/microblog.db
SECRET_FILE := instance/secret_key

$(SECRET_FILE):
	@echo "Making a development secret in $(SECRET_FILE) ..."
	mkdir -p instance
	$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@
	chmod 600 $@

run: venv $(SECRET_FILE)
	@echo "Migrating and seeding $(DATABASE_URL) ..."
	export DATABASE_URL='$(DATABASE_URL)' TABLEREST_SECRET_KEY="$$(cat $(SECRET_FILE))" && \
	$(MICROBLOG) db upgrade && \
	$(MICROBLOG) db seed && \
	echo "Serving on http://$(HOST):$(PORT) with gunicorn ($(WORKERS) workers); Ctrl-C stops." && \
	exec $(MICROBLOG) serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
