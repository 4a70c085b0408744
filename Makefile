# learnstream — two commands on a fresh machine: `make demo` and `make test`.
# Both create the virtualenv, install the project, start the local services
# (Kafka 4.x from Maven Central + a private PostgreSQL) and apply migrations.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LEARNSTREAM := $(BIN)/learnstream

.PHONY: help install install-bench services migrate demo lint check-install test test-unit bench down clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed  ## virtualenv + the project and its test tools

services: install  ## start (or reuse) the local Kafka and PostgreSQL
	$(LEARNSTREAM) services up

migrate: services  ## apply the SQL migrations
	$(LEARNSTREAM) migrate

# the demo's alerts go to a local Alertmanager: installed here when missing (as root); if that fails
# (the leading -), the demo says so in one line and skips that part
demo: migrate  ## run the whole job once on the local services and show what happened
	-$(LEARNSTREAM) services monitoring
	$(LEARNSTREAM) demo

# the suite in PYTEST_WORKERS parallel processes (pytest-xdist), then the tests marked serial (they
# stop or restart the shared Kafka or PostgreSQL) alone; fails if either run fails
PYTEST_WORKERS ?= 4
test: services  ## the whole suite (unit, integration, e2e) on real services (and a headless Chromium, Prometheus, Alertmanager)
	$(LEARNSTREAM) services browser
	$(LEARNSTREAM) services monitoring
	status=0; \
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadscope -m "not serial" || status=$$?; \
	$(BIN)/python -m pytest -q -m serial || status=$$?; \
	exit $$status

lint: install  ## ruff and import-linter (layers streams -> db -> schemas, the dev kit apart, no cycles)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

check-install:  ## a production install (`pip install .`, no extras): every module imports, every --help answers
	bash .ci/check-install

test-unit: install  ## only the tests that need no services
	$(BIN)/python -m pytest -q tests/unit

$(BIN)/.installed-bench: $(BIN)/.installed
	$(BIN)/python -m pip install -q -e '.[bench]'
	touch $@

install-bench: $(BIN)/.installed-bench  ## the bench extra (quixstreams, psycopg2, psutil, py-spy)

bench: install-bench services  ## learnstream bench with its defaults (about 10 minutes)
	$(LEARNSTREAM) bench

down:  ## stop the local services (data is kept in .learnstream/)
	$(LEARNSTREAM) services down

clean: down  ## stop services and remove the virtualenv and local state
	rm -rf $(VENV) .learnstream

.PHONY: docs
docs: install  ## regenerate docs/configuration.md from streams/config.py
	$(BIN)/python -m streams.config_reference > docs/configuration.md
