# Footprint: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: demo dev serve test chromium reliability lint bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Azurite (the Azure Storage emulator) for the tests that talk to storage; axe-core for the UI's.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(BIN)/footprint demo

# Azurite on its default ports (blob 10000, queue 10001, table 10002) unless one already
# listens there, then `footprint dev` against it; Ctrl-C stops both. DEV_ARGS go to footprint dev.
AZURITE := node node_modules/azurite/dist/src/azurite.js --silent --inMemoryPersistence \
	--skipApiVersionCheck --disableTelemetry --loose
LISTENS := $(BIN)/python -c "import socket, sys; socket.create_connection(('127.0.0.1', 10000), 1)"
DEV_ARGS ?= --store sqlite:///dev.db

dev: $(STAMP) $(NODE_STAMP)
	@if $(LISTENS) 2>/dev/null; then echo "using the Azurite already on port 10000"; else \
	  $(AZURITE) & azurite=$$!; trap 'kill $$azurite 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	  tries=0; until $(LISTENS) 2>/dev/null; do \
	    tries=$$((tries + 1)); [ $$tries -lt 300 ] || { echo "Azurite did not start" >&2; exit 1; }; \
	    sleep 0.2; done; \
	fi; \
	$(BIN)/footprint dev $(DEV_ARGS)

# The web UI and HTTP API over the demo store (make demo first), on http://127.0.0.1:7071/api/ui/
serve: $(STAMP)
	$(BIN)/footprint serve --store sqlite:///demo/footprint.db --source demo/export

# The browser tests drive the system's Chromium; Playwright never downloads a browser.
chromium:
	@command -v chromium >/dev/null || test -x /usr/lib/chromium/chromium || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && apt-get install -y -q --no-install-recommends chromium; \
	  else echo "make test needs Chromium: install the chromium package (apt-get install chromium)"; exit 1; fi

test: $(STAMP) $(NODE_STAMP) chromium
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
