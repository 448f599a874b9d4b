# The two commands: `make run` (set up, then serve on the embedded SQLite
# default) and `make test` (set up, then every check on SQLite and PostgreSQL).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest install tools bench clean

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
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  echo "installing chromium and chromium-driver (the console's browser tests)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null \
	  || { echo "error: chromium or chromedriver is missing and could not be installed" >&2; exit 1; }; }

lint: install
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench

typecheck: install
	$(BIN)/mypy --strict app

pytest: install tools
	scripts/ensure-postgres.sh
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: install
	scripts/ensure-postgres.sh
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
