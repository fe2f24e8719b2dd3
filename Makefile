# The README's two commands: `make run` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python

.PHONY: run test lint install test-deps bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/signalite serve

test-deps:
	bash scripts/test-deps.sh

# Static checks first (ruff: lint and import order; mypy: strict on aws/, signaling/ and the
# typed seams), then the suite.
lint: test-deps
	$(VENV)/bin/ruff check signalite tests bench examples
	$(VENV)/bin/mypy

test: test-deps
	$(VENV)/bin/ruff check signalite tests bench examples
	$(VENV)/bin/mypy
	set -a; . ./.test-env; set +a; $(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks (loopback only, bounded, a few minutes); results belong in docs/benchmarks.md.
bench: install
	$(PY) -m bench.rest_endpoint --runs 5 --seconds 4 --connections 64
	$(PY) -m bench.relay --quiet-wait 5

clean:
	rm -rf $(VENV) .signalite tests/node/node_modules
