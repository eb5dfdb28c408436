# Two entry points a fresh machine needs: `make demo` and `make test`.
# Each sets up its own virtual environment once (idempotent; re-run any time).
# `make test-fast` is the inner loop while editing: the same lint and type
# checks, and every test but the slow and the live ones. CI runs `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck unit unit-fast setup sysdeps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/ledgersim demo

lint: $(STAMP)
	$(BIN)/ruff check msp pbft ledger chaincode sim tests
	$(BIN)/ruff format --check msp pbft ledger chaincode sim tests

typecheck: $(STAMP)
	$(BIN)/mypy

sysdeps:
	bash scripts/system-deps.sh

unit: $(STAMP) sysdeps
	$(BIN)/pytest -q

unit-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not live"

test: lint typecheck unit

test-fast: lint typecheck unit-fast

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
