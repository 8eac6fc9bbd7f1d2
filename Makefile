# For developers (see README.md and CONTRIBUTING.md): `make demo`, `make test-file`,
# `make docs` and `make test`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# pyenv installs each Python in its own folder, and its shims answer only for
# the global version: put the real interpreters on PATH so that tox finds
# python3.11, python3.12 and python3.13 (newest first: it also picks `python3`).
PYENV_ROOT ?= $(HOME)/.pyenv
PYTHON_DIRS := $(wildcard $(PYENV_ROOT)/versions/3.13*/bin $(PYENV_ROOT)/versions/3.12*/bin $(PYENV_ROOT)/versions/3.11*/bin $(PYENV_ROOT)/versions/3.1[4-9]*/bin)
empty :=
space := $(empty) $(empty)
ifneq ($(strip $(PYTHON_DIRS)),)
export PATH := $(subst $(space),:,$(strip $(PYTHON_DIRS))):$(PATH)
endif

# Under CI every supported Python must be there: a missing one fails the run.
ifeq ($(CI),true)
export TOX_SKIP_MISSING_INTERPRETERS := false
endif

# The first interpreter that actually runs (a pyenv shim may exist and fail).
PYTHON := $(shell PATH='$(PATH)'; for p in python3.12 python3.13 python3.11 python3; do \
	if $$p -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1; then echo $$p; break; fi; done)

TOX_LOG := .tox/make-test.log
DEMO_ADDRESS ?= 127.0.0.1:8000

.PHONY: help demo test test-file docs bench bench-soak

help:
	@echo "make demo  - run the example project on embedded defaults at http://127.0.0.1:8000"
	@echo "make test-file FILE=tests/test_views.py - one test file (or FILE=path::test), on"
	@echo "             Python 3.12 and Django 6.1 (TOX_ENV=py311-django52 for another environment)"
	@echo "make docs  - build the documentation as CI does (warnings are errors) into docs/_build/html"
	@echo "make test  - run the whole test suite (every Python and Django), lint and docs build"
	@echo "make bench - the side-by-side benchmark and the soak (~40 min) into docs/performance; bench-soak: the soak alone"

.venv/bin/python:
	@test -n "$(PYTHON)" || { echo "No Python 3.11 or newer found on PATH." >&2; exit 1; }
	$(PYTHON) -m venv .venv

demo: .venv/bin/python
	.venv/bin/python -m pip install --quiet -e . daphne
	cd example_project && ../.venv/bin/python manage.py migrate --noinput \
		&& ../.venv/bin/python manage.py populate_knowledge_base knowledge/home_services.json \
		&& ../.venv/bin/python manage.py runserver $(DEMO_ADDRESS)

.venv-tox/bin/tox:
	@test -n "$(PYTHON)" || { echo "No Python 3.11 or newer found on PATH." >&2; exit 1; }
	$(PYTHON) -m venv .venv-tox
	.venv-tox/bin/python -m pip install --quiet "tox>=4.11,<5"

# Two environments at a time (the machine size we plan for has 2 cores); each
# one's output is printed whole when it finishes. The pytest summary of every
# environment is repeated at the end, so the last lines say how the tests went.
# A subset: make test TOX_ARGS="-e py312-django61,lint -- -x tests/llm"
test: .venv-tox/bin/tox
	@mkdir -p .tox
	@status=0; \
	.venv-tox/bin/tox run-parallel -p 2 --parallel-no-spinner $(TOX_ARGS) 2>&1 | tee $(TOX_LOG) || status=$$?; \
	echo; echo "pytest summaries:"; \
	sed -e 's/\x1b\[[0-9;]*m//g' $(TOX_LOG) | awk ' \
		/^[A-Za-z0-9_.-]+: commands\[[0-9]+\]>/ { env = $$1; sub(/:$$/, "", env) } \
		/^(=+ )?([0-9]+ [a-z]+(, [0-9]+ [a-z]+)*|no tests ran) in [0-9.]+s/ { print env; print } \
	'; \
	exit $$status

# One test file, or one test (FILE=tests/test_views.py::test_health_refuses_post), in
# one tox environment: the first run installs it, later runs take seconds. Every test
# of FILE runs, whatever its markers (tests needing a service skip without it); files
# under tests/browser run in the browser environment. TOX_ENV picks another, e.g.
# py311-django52, or py312-django61-postgres with DATABASE_URL for PostgreSQL.
FILE ?=
TOX_ENV ?= $(if $(findstring tests/browser,$(FILE)),browser,py312-django61)
test-file: .venv-tox/bin/tox
	@test -n "$(FILE)" || { echo "Usage: make test-file FILE=tests/test_views.py" >&2; exit 2; }
	.venv-tox/bin/tox run -e $(TOX_ENV) -- $(FILE) -m "$(if $(findstring browser,$(TOX_ENV)),browser,not browser)"

# The documentation, as CI builds it: warnings are errors.
docs: .venv-tox/bin/tox
	.venv-tox/bin/tox run -e docs
	@echo "Open docs/_build/html/index.html"

# The benchmark (docs/performance.md): PostgreSQL at DATABASE_URL or 127.0.0.1.
# Run it on a quiet machine; BENCH_ARGS="--database sqlite" runs it on SQLite.
bench: .venv/bin/python
	.venv/bin/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	.venv/bin/python -m benchmarks all --profile $(BENCH_ARGS)

bench-soak: .venv/bin/python
	.venv/bin/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	.venv/bin/python -m benchmarks soak $(BENCH_ARGS)
