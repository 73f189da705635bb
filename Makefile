# pslake: bootstrap from a machine with only Python 3.11 and pip.
# `make demo` and `make test` work from a fresh clone with no other command first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml Makefile | cksum | cut -d' ' -f1)
SIZE   ?= medium
# Debian's Chromium for the browser tests (tests/browser), installed once per virtualenv
BROWSER := $(VENV)/.chromium
# Debian's PostgreSQL server for the dbt project's portability test (tests/dbt/test_portability.py)
POSTGRES := $(VENV)/.postgresql
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=
# two workers: much of the suite waits on servers, subprocesses and backoffs, not on the cores;
# a file's tests stay on one worker (module fixtures), firms shared across workers are built once
PYTEST_WORKERS ?= 2

.PHONY: setup demo test bench lint soak lock clean

$(STAMP): pyproject.toml requirements.lock Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "pslake needs Python 3.11, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.installed-*
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.8
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock \
	  || $(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e . \
	  || $(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@# bytecode now, once: with PYTHONDONTWRITEBYTECODE set, every process would recompile
	@# dlt, dbt and pandas from source (~5 s per `pslake` command)
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	@touch $@

setup: $(STAMP)

$(BROWSER):
	@command -v chromium > /dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; }
	@chromium --version
	@touch $@

$(POSTGRES):
	@ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the dbt portability test"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null; }
	@ls /usr/lib/postgresql/*/bin/initdb
	@touch $@

demo: setup
	$(BIN)/pslake demo --size $(SIZE)

test: setup $(BROWSER) $(POSTGRES)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

soak: setup
	$(BIN)/pytest -m soak $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m benchmarks.run --size $(SIZE)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

# Re-pin every dependency (needs the package registry).
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
