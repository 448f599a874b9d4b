# The two commands: `make run` (set up, then serve on the embedded SQLite
# default) and `make test` (set up, then every check on SQLite and PostgreSQL).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest install tools js bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/uvicorn app.main:app --loop app.serving:new_event_loop --host $(HOST) --port $(PORT) --timeout-graceful-shutdown 10

tools:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  echo "installing docker-compose (validates docker-compose.yml)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) >/dev/null \
	  || { echo "error: docker-compose is missing and could not be installed" >&2; exit 1; }; }

# The official AG-UI and Vercel AI SDK clients the frontend tests drive with node,
# installed from tests/js/package-lock.json into tests/js/node_modules.
tests/js/node_modules/.package-lock.json: tests/js/package.json tests/js/package-lock.json
	npm ci --silent --no-audit --no-fund --prefix tests/js

js: tests/js/node_modules/.package-lock.json

lint: install
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench

typecheck: install
	$(BIN)/mypy --strict app

pytest: install tools js
	scripts/ensure-postgres.sh
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: install
	scripts/ensure-postgres.sh
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache tests/js/node_modules
