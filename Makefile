# Two entry points a fresh machine needs: `make demo` and `make test`.
# Each sets up its own virtual environment once (idempotent; re-run any time).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit setup sysdeps clean mutation

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

test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Mutation testing (slow, not in CI): `make mutation PKG=pbft` runs mutmut over the profile
# [tool.ledgersim.mutation.pbft] in pyproject.toml and writes docs/mutation/pbft.md;
# MUTATE='pbft.rules.*' narrows the run to mutant names matching those globs.
PKG    ?= pbft
MUTATE ?=
MUTATION_STAMP := $(VENV)/.installed-mutation

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,mutation]'
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	$(BIN)/python scripts/mutation.py run $(PKG) $(if $(MUTATE),--only $(MUTATE))
