# The two commands: `make run` and `make test`. Both work on a fresh machine with python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit services bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/postroom serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

services:
	bash scripts/test-services.sh

test: $(STAMP) lint typecheck services
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/smtp_protocol.py
	$(BIN)/python bench/smtp_acceptance.py

# The long fuzz run (see bench/fuzz_long.py): SESSIONS inputs or SECONDS, whichever comes first.
fuzz: $(STAMP)
	nice -n 10 $(BIN)/python bench/fuzz_long.py --sessions $(or $(SESSIONS),1000000) --seconds $(or $(SECONDS),1800) --mime

clean:
	rm -rf $(VENV) postroom-data .pytest_cache .mypy_cache .ruff_cache
