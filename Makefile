# Drakewell — the two commands: `make demo` and `make test`.
PY        ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
DATA_DIR  ?= ../shared/data
export DRAKEWELL_DATA_DIR ?= $(DATA_DIR)

.PHONY: demo test lint bench node sysdeps clean

EXTRAS    := dev,postgres,grid,sweep,fleet,live,forecast,gpu

# Every extra, installed together. uv applies constraints/overrides.txt (one pin lifted, with its reason).
$(STAMP): pyproject.toml constraints/overrides.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip uv==0.13.9
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[$(EXTRAS)]' --override constraints/overrides.txt
	touch $(STAMP)

# npm tools (the anvil EVM node) pinned by package-lock.json
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

node: node_modules/.installed

# System packages the integration tests need (PostgreSQL server, Chromium); skipped when present.
sysdeps:
	@command -v chromium >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql >/dev/null) || \
	    echo "warning: could not install chromium/postgresql; their tests will say what to install"; }

demo: $(STAMP)
	$(BIN)/drakewell demo --out out

test: $(STAMP) node sysdeps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP) node
	mkdir -p out/bench
	@status=0; for b in dispatch gas metering exchange routing; do \
	  echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py --json out/bench/$$b.json || status=1; \
	done; [ $$status -eq 0 ] || { echo "make bench: a target was missed (MISS lines above); every figure is in out/bench/"; exit 1; }

clean:
	rm -rf $(VENV) node_modules out .pytest_cache .mypy_cache .ruff_cache
