# Footprint: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: demo test reliability lint bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Azurite (the Azure Storage emulator) for the tests that talk to storage.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(BIN)/footprint demo

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

# The reliability suite alone (make test runs it too): prints and writes its summary table.
reliability: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest tests/reliability tests/unit/test_config_properties.py tests/unit/test_mapping_properties.py tests/unit/test_parsing_properties.py

lint: $(STAMP)
	$(BIN)/ruff check .

# Benchmark-only dependencies (DuckDB, pandas, py-spy), never installed for the app itself.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	touch $@

# One table of every ingest path on one generated export; BENCH_ARGS=--quick for a smoke run.
bench: $(BENCH_STAMP) $(NODE_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules demo .pytest_cache .ruff_cache
