# reviewer — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export DEBUG ?= 1

.PHONY: run test test-pg load lint format bench install install-dev clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Set up, migrate, load the demo batches, make sure a login exists, serve, and run the sync worker.
run: install
	$(PY) manage.py migrate --no-input -v0
	$(PY) manage.py load_demo
	$(PY) manage.py ensure_local_user
	@echo "Serving the dashboard on http://$(HOST):$(PORT)/ (and a background-sync worker)"
	@$(PY) manage.py worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver $(HOST):$(PORT)

## Run the whole suite (unit, HTTP fakes and browser tests).
test: install-dev
	$(PY) -m pytest

## The whole suite again on PostgreSQL (.ci/run starts a throwaway cluster for it):
## DATABASE_URL=postgres://user:password@host:port/db make test-pg — the role needs CREATEDB.
test-pg: install-dev
	@case "$$DATABASE_URL" in postgres://*|postgresql://*) ;; \
	  *) echo "make test-pg: set DATABASE_URL=postgres://user:password@host:port/db (README, Testing)" >&2; exit 2;; esac
	$(PY) -m pytest

## Load test: the dashboard under gunicorn, 20 clients for 30 s on the bench's 100,000-event batch
## (bench/load.py; LOAD_ARGS="--seconds 10 --writes"). `make bench` runs it too, last.
load: $(VENV)/.installed-bench
	BENCH_PEER_PATH=$(VENV)/bench-peer $(PY) bench/run.py --only load $(LOAD_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Benchmarks (bench/README.md). The NomadicML SDK (the "peer" rows) goes into its own
## directory, not site-packages: its wheel ships a top-level `tests` package.
$(VENV)/.installed-bench: $(VENV)/.installed-dev requirements-bench.txt bench/requirements-peer.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	rm -rf $(VENV)/bench-peer
	$(PY) -m pip install --quiet --no-deps --target $(VENV)/bench-peer -r bench/requirements-peer.txt
	touch $@

bench: $(VENV)/.installed-bench
	BENCH_PEER_PATH=$(VENV)/bench-peer $(PY) bench/run.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
