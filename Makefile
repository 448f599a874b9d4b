# The two commands: `make run` (set up, then serve on the embedded SQLite
# default) and `make test` (set up, then every check on SQLite and PostgreSQL).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# uv installs the exact versions (and hashes) pinned in uv.lock; the Dockerfile
# installs the same uv.
UV_VERSION := 0.13.8
UV := UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv
UV_INSTALLED := $(VENV)/.uv-$(UV_VERSION)

.PHONY: run test lint typecheck pytest install lock tools bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV_INSTALLED): | $(BIN)/python
	$(BIN)/pip install --quiet pip==26.3 uv==$(UV_VERSION)
	touch $@

# --locked: install uv.lock as it is, and fail if it no longer matches pyproject.toml.
# --compile-bytecode, as pip does: where PYTHONDONTWRITEBYTECODE is set, each
# process would otherwise compile every module it imports, every time.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV_INSTALLED)
	$(UV) sync --quiet --locked --compile-bytecode --extra dev
	touch $@

install: $(VENV)/.installed

# Re-resolve every pin to the newest release that pyproject.toml's bounds allow.
lock: | $(UV_INSTALLED)
	$(UV) lock --upgrade

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
