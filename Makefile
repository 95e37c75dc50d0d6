# The two commands of the README: `make run` serves the demo program for real on the embedded
# PostgreSQL; `make test` runs the whole suite. Both install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TYPECHECK := build/typecheck

.PHONY: run test check lint typecheck proto proto-check native pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The calculation's hot modules compiled with mypyc (server/native.py); a no-op when current.
# `run` serves interpreted if this machine cannot compile; `test` requires the compiled form.
native: $(STAMP)
	$(BIN)/python setup.py --quiet build_ext --inplace
	$(BIN)/python -m arbiter.server.native build

run: $(STAMP)
	$(BIN)/python setup.py --quiet build_ext --inplace
	$(BIN)/python -m arbiter.server.native build --optional
	$(BIN)/arbiter serve --program server/demo/demo_program.json

test: $(STAMP) proto-check lint typecheck pytest

proto: $(STAMP)
	$(BIN)/python proto/generate.py

proto-check: $(STAMP)
	$(BIN)/python proto/generate.py --check

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy cannot follow the editable install's folder mapping (arbiter.server -> server/), so it
# reads a tree of links laid out as the installed namespace.
typecheck: $(STAMP)
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/arbiter
	ln -s $(CURDIR)/proto/arbiter/__init__.py $(TYPECHECK)/arbiter/__init__.py
	ln -s $(CURDIR)/proto/arbiter/v1 $(TYPECHECK)/arbiter/v1
	ln -s $(CURDIR)/server $(TYPECHECK)/arbiter/server
	ln -s $(CURDIR)/client $(TYPECHECK)/arbiter/client
	cd $(TYPECHECK) && MYPYPATH=. $(abspath $(BIN))/mypy --config-file $(CURDIR)/pyproject.toml -p arbiter.server -p arbiter.client

pytest: native
	ARBITER_NATIVE=require $(BIN)/pytest -q -p no:cacheprovider tests

bench: native
	ARBITER_NATIVE=require $(BIN)/pytest -q -p no:cacheprovider bench --benchmark-only

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache server/*/_native server/*/_native.* server/*/*.so server/*/_*.c
