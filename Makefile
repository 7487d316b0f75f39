# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9

# Test processes (pytest-xdist, one PostgreSQL database each): 4 was the fastest on 2 cores
# (2: 10.6 min, 3: 9.8, 4: 9.2), as many tests wait on processes, sockets and timers.
TEST_WORKERS ?= 4

.PHONY: install install-dev run test test-fast check format bench soak

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV)  ## the service and its runtime dependencies, from the lock file
	$(UV) sync --frozen --no-dev --inexact

install-dev: $(UV)  ## everything, test and lint tools included
	$(UV) sync --frozen

run: install  ## start the service (SQLite in ./ticketdesk.db unless DATABASE_URL is set)
	$(VENV)/bin/ticketdesk serve

test: install-dev  ## the whole test suite, on SQLite and on PostgreSQL (TEST_DATABASE_URL)
	$(VENV)/bin/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-fast: install-dev  ## the suite less its slow tests (processes, browsers, nginx, fuzzing)
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

check: install-dev  ## lint, formatting and types
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff check --fix src tests
	$(VENV)/bin/ruff format src tests

bench: install-dev  ## load benchmark against PostgreSQL (needs wrk, pgbench); see bench/README.md
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

soak: install-dev  ## 30 minutes of traffic with faults on a PostgreSQL of its own; see bench/README.md
	$(VENV)/bin/python bench/soak.py $(SOAK_ARGS)
