# Two commands for a newcomer: `make demo` runs the product, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_LAB := tools/vcsim/labs/demo.json
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist workers for `make test` (one per CPU); each has its own test database and Redis database
TEST_WORKERS ?= auto

.PHONY: demo test venv lint system-deps vcsim bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests need (Go + govmomi for the vcsim lab); installs them when run as root.
system-deps:
	@bash tools/ensure-system-deps.sh

vcsim: system-deps
	@bash tools/vcsim/build.sh

demo: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py inventory import $(DEMO_LAB) --vcenter demo-lab
	$(PY) manage.py demo_admin
	@echo "Serving on http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check

test: $(STAMP) vcsim lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --reliability-report=docs/reliability.md

bench: $(STAMP) vcsim
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) db.sqlite3 var staticfiles tools/vcsim/gpulab
