# Tandem: `make run` serves the portal, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
FLASK := $(BIN)/flask --app app

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run serve worker install install-dev chromium test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# A stamp per requirements file: a second `make run` reinstalls nothing unless a pin changed.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# `flask run` takes its host and port from FLASK_RUN_HOST/FLASK_RUN_PORT; every command here
# sees them, so links in mail (confirmation, reset, matches) name this port unless
# TANDEM_BASE_URL says otherwise.
run: install
	export TANDEM_ENV=$${TANDEM_ENV:-development} FLASK_RUN_HOST=127.0.0.1 FLASK_RUN_PORT=$(PORT); \
	$(FLASK) db upgrade && \
	$(FLASK) demo load --if-empty && \
	echo "Tandem is starting on http://127.0.0.1:$(PORT)" && \
	$(FLASK) run

# Production: migrate DATABASE_URL, then serve with gunicorn (gunicorn.conf.py: HOST, PORT,
# WEB_CONCURRENCY; default 127.0.0.1:8000). SECRET_KEY is required. Jobs (mail, re-ranking)
# are run by `make worker` processes. With several web machines, migrate once per release
# (`flask --app app db upgrade`) and start each with `.venv/bin/gunicorn -c gunicorn.conf.py`.
serve: install
	$(FLASK) db upgrade
	exec $(BIN)/gunicorn --config gunicorn.conf.py

# One queue worker; start as many as needed. It writes its metrics (re-ranking times) where
# this machine's web processes add them up at /metrics (the folder gunicorn.conf.py uses).
worker: install
	export PROMETHEUS_MULTIPROC_DIR="$${PROMETHEUS_MULTIPROC_DIR:-$${TANDEM_INSTANCE_PATH:-$(CURDIR)/instance}/prometheus}"; \
	mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && exec $(FLASK) worker

# The browser tests drive Debian's Chromium (Playwright's own browser download is not used).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

chromium:
	command -v chromium >/dev/null || \
	  ($(SUDO) apt-get update -qq && \
	   $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test: install-dev lint chromium
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-dev
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
