# Passgate: `make run` serves http://localhost:8000 (SQLite); `make test` installs what is missing and runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps run test lint typecheck bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@sh scripts/install-system-deps.sh

run: $(STAMP)
	$(BIN)/passgate serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) system-deps lint typecheck
	$(BIN)/python -m pytest

# Load benchmark (needs PostgreSQL 15 and redis-server: `make system-deps`); knobs: BENCH_* (see BENCHMARKS.md).
bench: $(STAMP)
	$(BIN)/python -m bench
