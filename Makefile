# The front door: `make run` starts the whole stack, `make test` runs every test CI runs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
#: The web port (honcho gives web, the first process listed, exactly this port).
PORT ?= 8000
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test lint bench chaos services install release clean

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP) ## venv + pinned requirements

services: ## PostgreSQL, Redis, RabbitMQ (+ management UI) answer, or say how to start them
	@bash scripts/services.sh

release: install services ## migrations + broker topology
	$(PY) -m config.cli release

run: release ## the whole stack from the Procfile: web on http://127.0.0.1:8000 and every pool
	$(VENV)/bin/honcho start --port $(PORT) web categorization fx budgets notifications audit insights

test: install services ## the whole suite, against real PostgreSQL, RabbitMQ and Redis
	$(PY) -m ruff check .
	$(PY) -m pytest

bench: install services ## benchmarks: prints a table, writes docs/bench/*.json
	$(PY) -m bench.ingest
	$(PY) -m bench.ledger

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV)
