# The front door: `make run` starts the whole stack, `make test` runs every test CI runs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
#: The web port (honcho gives web, the first process listed, exactly this port).
PORT ?= 8000
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test lint bench chaos profile services install release clean demo

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
	$(PY) -m bench.reports
	$(PY) -m bench.audit
	$(PY) -m bench.summary

chaos: install services ## load + faults (pools SIGKILLed, RabbitMQ and Redis REALLY restarted, FX down), then every invariant
	$(PY) -m bench.chaos --mode real
	$(PY) -m pytest -m slow tests/e2e/test_notifications_outage.py

profile: install services ## py-spy flame graphs of web and every pool under ingest load: docs/bench/profiles/
	$(PY) -m bench.profile

demo: install ## a demo user with two years of history on the running stack (`make run` first); DEMO_URL to change
	$(PY) scripts/demo.py --url $(or $(DEMO_URL),http://127.0.0.1:$(PORT)) $(DEMO_ARGS)

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV)
