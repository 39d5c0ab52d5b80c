# Field Notes, Rebuilt: `make book` builds the site, `make test` runs the whole suite.
# Everything a fresh Debian machine needs is installed from here (apt packages included).

SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Per-rank thread counts and quiet, offline settings shared by every target.
export SPARK_LOCAL_IP      := 127.0.0.1
export HF_HUB_OFFLINE      := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONWARNINGS      := ignore::FutureWarning

.PHONY: book test workshop lab system-book system-test install clean

# The virtual environment: torch first (the CPU build from local disk, so nothing pulls CUDA),
# then the package and its pinned dependencies, editable from lib/.
$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

system-book:
	@$(PYTHON) lib/fieldnotes/preflight.py book

system-test:
	@$(PYTHON) lib/fieldnotes/preflight.py test

book: system-book $(STAMP)
	$(PY) -m fieldnotes.runner book $(if $(FRESH),--fresh)

# A classroom machine, the day before: assets, DeepSpeed's extension, Spark's first start, and
# every chapter once at workshop size; prints what is ready and how long each chapter took.
workshop: system-book $(STAMP)
	$(PY) -m fieldnotes.classroom

test: system-test $(STAMP)
	$(PY) -m pytest

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=.

clean:
	rm -rf _build .pytest_cache .hypothesis
