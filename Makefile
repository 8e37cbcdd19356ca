# Passgate: `make run` serves http://localhost:8000 (SQLite); `make test` installs what is missing and runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
# The Node relying party the tests run (openid-client), installed from its lock file.
NODE_RP := tests/node/node_modules/.installed
# The benchmark's reference server (SimpleWebAuthn on Node, better-sqlite3 built against the system's Node headers).
BENCH_REFERENCE := bench/simplewebauthn/node_modules/.installed
# The browser client's package (clients/js): TypeScript, to check its declarations.
JS_CLIENT := clients/js/node_modules/.installed

.PHONY: install system-deps run test lint typecheck bench messages

# `make run` needs the server only; the test tools (pytest, mypy, Playwright, schemathesis...) come with `make test`.
$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

$(DEV): $(RUNTIME) clients/python/pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e 'clients/python[fastapi,flask,flask-login,django]'
	touch $(DEV)

$(NODE_RP): tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --silent
	touch $(NODE_RP)

$(BENCH_REFERENCE): bench/simplewebauthn/package-lock.json
	cd bench/simplewebauthn && npm_config_nodedir=/usr npm ci --no-audit --no-fund --silent
	touch $(BENCH_REFERENCE)

$(JS_CLIENT): clients/js/package-lock.json
	cd clients/js && npm ci --no-audit --no-fund --silent
	touch $(JS_CLIENT)

install: $(DEV) $(NODE_RP) $(BENCH_REFERENCE) $(JS_CLIENT)

system-deps:
	@sh scripts/install-system-deps.sh

run: $(RUNTIME)
	$(BIN)/passgate serve

lint: $(DEV)
	$(BIN)/ruff check src tests bench clients/python examples
	$(BIN)/ruff format --check src tests bench clients/python examples

typecheck: $(DEV)
	$(BIN)/mypy
	$(BIN)/mypy --strict examples/fastapi_app/main.py examples/flask_app/app.py examples/django_app/manage.py \
		examples/django_app/example_site

test: $(DEV) system-deps $(NODE_RP) $(BENCH_REFERENCE) $(JS_CLIENT) lint typecheck
	$(BIN)/python -m pytest

# Load benchmark (needs PostgreSQL 15 and redis-server: `make system-deps`); knobs: BENCH_* (see BENCHMARKS.md).
bench: $(DEV) $(BENCH_REFERENCE)
	$(BIN)/python -m bench

# The catalogs (src/passgate/locale): extract every message of the code, templates and browser client into the
# template, then add the new ones to each language's catalog, to be translated there (see "Languages" in the README).
LOCALE := src/passgate/locale
messages: $(DEV)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k t -k tn:1,2 -k translated --no-wrap --sort-by-file \
		--project Passgate --copyright-holder Passgate -o $(LOCALE)/passgate.pot .
	$(BIN)/pybabel update -D passgate -i $(LOCALE)/passgate.pot -d $(LOCALE) --no-wrap --ignore-obsolete
