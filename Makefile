# hashsync — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml client/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e ./client -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install hashsync with its development tools

run: $(STAMP) ## Run hashsync on the embedded default (SQLite, local storage, in-process tasks, synthetic demo data); HOST=… PORT=… to listen elsewhere (default 127.0.0.1:8000)
	@$(BIN)/python manage.py migrate --verbosity 0
	@$(BIN)/python manage.py seed_demo --check-port --url http://$(HOST):$(PORT)/
	@$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(STAMP) ## Run the tests: SQLite pass, then PostgreSQL + Redis + real Celery worker pass
	@scripts/run-tests

prod-check: $(STAMP) ## Production mode end to end on this machine: nginx, 2 web nodes, 2 workers, beat, PostgreSQL, Redis, S3 (moto); under 3 minutes (docs/operations.md)
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { echo "no nginx: apt-get install -y nginx" >&2; exit 1; }
	@$(BIN)/python scripts/prod-check.py

screenshots: $(STAMP) ## Run only the browser tests and keep their screenshots, one per page and role (var/screenshots/, or HASHSYNC_SCREENSHOTS_DIR=…)
	@command -v chromium >/dev/null || { echo "no chromium on PATH: apt-get install -y chromium" >&2; exit 1; }
	@dir="$${HASHSYNC_SCREENSHOTS_DIR:-var/screenshots}"; mkdir -p "$$dir"; rm -f "$$dir"/*--*.png; \
	env -u DATABASE_URL -u CELERY_BROKER_URL -u TEST_DATABASE_NAME HASHSYNC_ENV=development HASHSYNC_SCREENSHOTS_DIR="$$dir" \
	  $(BIN)/python -m pytest -n "$${PYTEST_WORKERS:-auto}" -m browser -q; status=$$?; \
	echo "Screenshots ($$(ls "$$dir" | grep -c -- '--.*\.png$$')): $$(cd "$$dir" && pwd)/"; exit $$status

conformance: $(STAMP) ## The conformance suite (docs/conformance.md): generate it twice (byte-identical), run the project's client and the reference verifier on every case
	@$(BIN)/python conformance/generate.py --out var/conformance
	@$(BIN)/python conformance/generate.py --out var/conformance-again >/dev/null
	@diff -r var/conformance var/conformance-again >/dev/null || { echo "the generator is not deterministic" >&2; exit 1; }
	@rm -rf var/conformance-again
	@$(BIN)/python conformance/run.py --cases var/conformance -- $(BIN)/python conformance/reference.py
	@$(BIN)/python conformance/run.py --cases var/conformance -- $(BIN)/python conformance/client_runner.py
.PHONY: conformance

lint: $(STAMP) ## ruff, mypy, the direction of imports between apps, and no missing migration
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy .
	@out=$$($(BIN)/lint-imports --no-cache 2>&1) || { echo "$$out"; exit 1; }
	@$(BIN)/python manage.py makemigrations --check --dry-run --verbosity 0

fmt: $(STAMP) ## Format and auto-fix the code
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

bench: $(STAMP) ## Benchmarks at the full scale of the targets (P1–P7); prints `<id> <name> <value> <unit>`
	@scripts/run-bench full

bench-quick: $(STAMP) ## Benchmarks at a scale that finishes in about a minute
	@scripts/run-bench quick

clean: ## Remove the virtualenv and the embedded data in var/
	rm -rf $(VENV) var

.PHONY: help install run test prod-check screenshots lint fmt bench bench-quick clean
